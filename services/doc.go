// Package services is the root of Ringback's services module: each service
// lives in its own package (origination, gateway, ...), shared platform code
// in internal/, and binaries in cmd/.
package services
