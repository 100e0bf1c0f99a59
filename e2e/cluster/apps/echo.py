"""The cluster e2e's echo peer (our own program, on the app image's python3-minimal).

echo.py serve PORT              echo every byte back, one thread, an event loop
echo.py send HOST PORT N SIZE [HOLD]
                                send N messages of SIZE bytes, each echoed, print
                                "exchanged", keep the connection HOLD seconds (default 0),
                                then print one line: sent=<bytes> p50_us=<n> p99_us=<n>
python3-minimal has no json module: the output is plain words.
"""

import selectors
import socket
import sys
import time


def serve(port: int) -> None:
    """One thread, an event loop (nginx's, Node's, Envoy's shape): with VCL's per-thread
    workers (the injector's default) a connection is used by the thread that accepted it.
    A thread per connection would hand it over, which VCL cannot serve (vcl-status
    reports it: e2e/apps)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(64)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    print(f"echo listening on {port}", flush=True)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, bytearray())
                continue
            echo(sel, sock, key.data)


def echo(sel: selectors.BaseSelector, conn: socket.socket, pending: bytearray) -> None:
    """Reads what is there and writes it back (the rest when the peer reads)."""
    try:
        data = conn.recv(65536)
    except BlockingIOError:
        return
    if not data:
        sel.unregister(conn)
        conn.close()
        return
    conn.setblocking(True)  # the peer reads each echo before sending more
    conn.sendall(data)
    conn.setblocking(False)


def send(host: str, port: int, count: int, size: int, hold: float = 0) -> None:
    payload = b"x" * size
    times = []
    with socket.create_connection((host, port), timeout=10) as conn:
        for _ in range(count):
            start = time.perf_counter()
            conn.sendall(payload)
            got = 0
            while got < size:
                chunk = conn.recv(size - got)
                if not chunk:
                    raise SystemExit("the server closed the connection")
                got += len(chunk)
            times.append(time.perf_counter() - start)
        print("exchanged", flush=True)
        time.sleep(hold)
    times.sort()
    p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    print(f"sent={count * size} p50_us={round(p50 * 1e6)} p99_us={round(p99 * 1e6)}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        hold = float(sys.argv[6]) if len(sys.argv) > 6 else 0
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), hold)
