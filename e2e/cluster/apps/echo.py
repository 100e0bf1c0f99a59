"""The cluster e2e's echo peer (our own program, on the app image's python3-minimal).

echo.py serve PORT              echo every byte back, one thread per connection
echo.py send HOST PORT N SIZE [HOLD]
                                send N messages of SIZE bytes, each echoed, print
                                "exchanged", keep the connection HOLD seconds (default 0),
                                then print one line: sent=<bytes> p50_us=<n> p99_us=<n>
python3-minimal has no json module: the output is plain words.
"""

import socket
import sys
import threading
import time


def serve(port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(64)
    print(f"echo listening on {port}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


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
