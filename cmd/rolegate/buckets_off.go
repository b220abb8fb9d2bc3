//go:build !cloudblob

package main

// cloudBuckets says whether s3://, gs:// and azblob:// are built in; build
// with -tags cloudblob for them.
const cloudBuckets = false
