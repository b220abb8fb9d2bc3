package main

// The bucket schemes ROLEGATE_BLOB_URL may use besides file:// (which the
// documents package registers): replicas on several machines share one
// bucket.
import (
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)
