//go:build cloudblob

package main

// Cloud buckets for ROLEGATE_BLOB_URL besides file:// (which the documents
// package always has), so that replicas on several machines share one
// bucket. They roughly double the first build, so they are opt-in:
// `make build TAGS=cloudblob`.
import (
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)

// cloudBuckets says whether s3://, gs:// and azblob:// are built in.
const cloudBuckets = true
