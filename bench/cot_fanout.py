"""The CoT fan-out's CPU per report, without the rest of the server: batches of 570-byte
frames sent to 110 TCP clients (100 of them senders, who do not get their own frames
back), drained by a child process, as `feeds.cot_server._fan_out` lays them out.
Compares batch sizes (the flush timer at 5,000/s: 5 ms = 25, 10 ms = 50, 20 ms = 100)
and one joined send per sender against two sends of slices. The CPU is this thread's
(`time.thread_time`, kernel time of send() included), so other load on the machine
matters far less than in `bench.cot`.

    python -m bench.cot_fanout
"""

from __future__ import annotations

import multiprocessing as mp
import random
import selectors
import socket
import time


def drain(port, n, ready):
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    ready.set()
    buf = bytearray(1 << 20)
    while True:
        for key, _ in sel.select():
            try:
                if key.fileobj.recv_into(buf) == 0:
                    return
            except BlockingIOError:
                pass
            except OSError:
                return


def main():
    N = 110
    FRAME = b"x" * 570
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(200)
    ready = mp.Event()
    p = mp.Process(target=drain, args=(srv.getsockname()[1], N, ready))
    p.start()
    conns = [srv.accept()[0] for _ in range(N)]
    ready.wait()
    for c in conns:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    senders = conns[:100]

    def run(per_batch, join, events=60000):
        flushes = events // per_batch
        t0 = time.thread_time()
        sends = 0
        for _ in range(flushes):
            origins = [random.choice(senders) for _ in range(per_batch)]
            spans = {}
            pos = 0
            groups = {}
            for o in origins:
                groups.setdefault(o, []).append(FRAME)
            parts = []
            for o, own in groups.items():
                size = sum(map(len, own))
                spans[o] = (pos, pos + size)
                parts.extend(own)
                pos += size
            every = b"".join(parts)
            view = memoryview(every)
            for c in conns:
                sp = spans.get(c)
                if sp is None:
                    c.sendall(every)
                    sends += 1
                    continue
                a, b = sp
                if join and a and b < pos:
                    c.sendall(b"".join((view[:a], view[b:])))
                    sends += 1
                else:
                    if a:
                        c.sendall(view[:a])
                        sends += 1
                    if b < pos:
                        c.sendall(view[b:])
                        sends += 1
            time.sleep(0.0005)  # let the drain keep up
        cpu = time.thread_time() - t0
        return cpu / events * 1e6, sends / events

    for _ in range(2):  # twice: the first pass warms up
        for per_batch in (25, 50, 100):
            for join in (False, True):
                us, spe = run(per_batch, join)
                print(
                    f"batch {per_batch:3d} join {join!s:5}: "
                    f"{us:6.1f} us CPU/event, {spe:.2f} sends/event",
                    flush=True,
                )
    for c in conns:
        c.close()
    p.join(5)
    p.kill()


if __name__ == "__main__":
    main()
