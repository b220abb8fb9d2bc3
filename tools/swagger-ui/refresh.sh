#!/usr/bin/env bash
# refresh.sh replaces internal/swaggerui/dist with the Swagger UI files that package
# swaggerui embeds, taken from the swagger-ui-dist version pinned in
# package.json and package-lock.json, and writes that version to
# internal/swaggerui/dist/VERSION (swaggerui's tests compare it with the pin).
# Run it after changing the pin and commit the result: the binary serves only
# the committed copy and loads nothing from the internet.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dist="$here/../../internal/swaggerui/dist"
# Only what the page loads (oauth2-redirect.html and its script are where the
# Authorize dialog's code flow comes back to), plus the licence texts that must travel with it
# (Apache-2.0 section 4 asks for LICENSE and NOTICE; the bundle's first line
# points at swagger-ui-bundle.js.LICENSE.txt for the code it bundles).
files=(
	swagger-ui.css
	swagger-ui-bundle.js
	favicon-32x32.png
	favicon-16x16.png
	oauth2-redirect.html
	oauth2-redirect.js
	LICENSE
	NOTICE
	swagger-ui-bundle.js.LICENSE.txt
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
# --ignore-scripts: swagger-ui-dist depends on @scarf/scarf, whose install
# script reports the installation to a third party; no script is needed.
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

src="$work/node_modules/swagger-ui-dist"
pinned="$(node -p 'require(process.argv[1]).dependencies["swagger-ui-dist"]' "$here/package.json")"
got="$(node -p 'require(process.argv[1]).version' "$src/package.json")"
if [[ "$got" != "$pinned" ]]; then
	echo "refresh.sh: npm ci installed swagger-ui-dist $got, package.json pins $pinned" >&2
	exit 1
fi

mkdir "$work/dist"
for f in "${files[@]}"; do
	cp "$src/$f" "$work/dist/$f"
done
printf '%s\n' "$got" >"$work/dist/VERSION"
rm -rf "$dist"
mkdir -p "$(dirname "$dist")"
cp -R "$work/dist" "$dist"
echo "internal/swaggerui/dist: swagger-ui-dist $got"
