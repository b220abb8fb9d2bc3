// The passkey buttons of the sign-in pages: each asks rolegate for a
// ceremony, has the browser answer it (navigator.credentials.get), and
// posts the answer with its form. Without WebAuthn the buttons stay hidden.
for (const button of document.querySelectorAll("button[data-passkey-options]")) {
  const form = button.form;
  const status = document.getElementById("passkey-status");
  if (!form || !window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    continue;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const mfa = form.elements.namedItem("mfa_token");
      const body = mfa ? { mfa_token: mfa.value } : {};
      const answer = await fetch(button.dataset.passkeyOptions, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      if (!answer.ok) {
        throw new Error(answer.status === 404 ? "This account has no passkey." : "Passkeys are not available now.");
      }
      const { ceremony, options } = await answer.json();
      const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      form.elements.namedItem("passkey_ceremony").value = ceremony;
      form.elements.namedItem("passkey").value = JSON.stringify(credential.toJSON());
      form.submit();
    } catch (e) {
      if (status) {
        status.textContent = e instanceof Error && e.name !== "NotAllowedError" ? e.message : "The passkey was not used.";
        status.hidden = false;
      }
      button.disabled = false;
    }
  });
}
