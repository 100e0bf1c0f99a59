// static-echo: a TCP echo server built with CGO_ENABLED=0, so it has no dynamic loader and
// LD_PRELOAD cannot enter it. The cluster e2e injects it and expects vcl-status to flag
// its container ("preload did not take") instead of reporting it healthy.
package main

import (
	"io"
	"log"
	"net"
	"os"
)

func main() {
	addr := ":7000"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("static-echo listening on %s", addr)
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func(c net.Conn) {
			defer c.Close()
			io.Copy(c, c)
		}(conn)
	}
}
