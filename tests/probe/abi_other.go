//go:build !amd64

package main

func foreignABI() string { return "unsupported on this architecture" }
