#!/usr/bin/env python3
"""Overload benchmark of `emolens serve` (issue 17, finding 7): goodput at 1x and 2x saturation.

Keyed clients upload 4-photo batches to an ad (`POST /v1/ads/{id}/photos`) while as many
anonymous clients post the same kind of batch to `/v1/analyze`. First a closed loop of
2 x inference-workers keyed clients measures the saturated throughput X (uploads/s); then
open-loop arrivals at 1x and 2x X, half keyed and half anonymous, for DURATION seconds each.
Reported per run: offered and completed uploads/s, keyed goodput, 429s, other failures,
p50/p99 latency of completed uploads, and whether every acknowledged photo is stored (the ad's
photo count against the sum of `ok` items acknowledged). Standard library only.

  bench/overload/overload.py PORT KEY AD_ID IMAGE... (bench/overload/run.sh starts the server)
"""
import http.client
import json
import os
import sys
import threading
import time

DURATION = float(os.environ.get("DURATION", "20"))
WORKERS = int(os.environ.get("WORKERS", "2"))
BOUNDARY = "emolensoverload"

port, key, ad = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
images = [open(p, "rb").read() for p in sys.argv[4:]]
counter = [0]
lock = threading.Lock()


def tagged(jpeg, n):
    """The JPEG with a comment naming `n` after its start marker: same pixels, new content."""
    tag = f"emolens-overload-{n}".encode()
    return b"\xff\xd8\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + jpeg[2:]


def body():
    with lock:
        counter[0] += 1
        n = counter[0]
    parts = []
    for i in range(4):
        img = tagged(images[(n * 4 + i) % len(images)], n * 4 + i)
        parts.append(
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{n}-{i}.jpg\"\r\n\r\n".encode()
            + img + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def post(keyed):
    """One upload: (keyed, status, photos acknowledged, seconds)."""
    path = f"/v1/ads/{ad}/photos" if keyed else "/v1/analyze"
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    if keyed:
        headers["Authorization"] = f"Bearer {key}"
    start = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("POST", path, body=body(), headers=headers)
        r = c.getresponse()
        data = r.read()
        status = r.status
        c.close()
    except Exception as e:  # a reset or broken pipe: a failure the run reports
        return (keyed, f"error: {type(e).__name__}", 0, time.monotonic() - start)
    stored = 0
    if keyed and status == 200:
        stored = sum(1 for i in json.loads(data)["items"] if i["status"] == "ok")
    return (keyed, status, stored, time.monotonic() - start)


def closed_loop(clients, seconds):
    results, end = [], time.monotonic() + seconds

    def run():
        while time.monotonic() < end:
            r = post(True)
            with lock:
                results.append(r)

    ts = [threading.Thread(target=run) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def open_loop(rate, seconds):
    """Arrivals at `rate` uploads/s (alternately keyed and anonymous), each on its own thread."""
    results, threads = [], []

    def one(keyed):
        r = post(keyed)
        with lock:
            results.append(r)

    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        t = threading.Thread(target=one, args=(n % 2 == 0,))
        t.start()
        threads.append(t)
        n += 1
    for t in threads:
        t.join()
    return results, time.monotonic() - start


def ad_photos():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", f"/v1/ads/{ad}", headers={"Authorization": f"Bearer {key}"})
    return json.loads(c.getresponse().read())["ad"]["photos"]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


acknowledged = 0
warm = closed_loop(WORKERS * 2, 3)
acknowledged += sum(r[2] for r in warm)
sat = closed_loop(WORKERS * 2, DURATION)
acknowledged += sum(r[2] for r in sat)
ok = [r for r in sat if r[1] == 200]
x = len(ok) / DURATION
print(f"saturation (closed loop, {WORKERS * 2} keyed clients): {x:.2f} uploads/s "
      f"({4 * x:.1f} photos/s), p50 {pct([r[3] for r in ok], 50):.2f} s")
for mult in (1, 2):
    res, took = open_loop(max(x * mult, 0.1), DURATION)
    acknowledged += sum(r[2] for r in res)
    done = [r for r in res if r[1] == 200]
    keyed_done = [r for r in done if r[0]]
    refused = sum(1 for r in res if r[1] == 429)
    other = [r[1] for r in res if r[1] not in (200, 429)]
    print(f"{mult}x saturation: offered {len(res) / took:.2f} uploads/s ({len(res)}), completed "
          f"{len(done) / took:.2f}/s (keyed {len(keyed_done) / took:.2f}/s, anonymous "
          f"{(len(done) - len(keyed_done)) / took:.2f}/s), 429 {refused}, other failures "
          f"{len(other)} {sorted(set(map(str, other)))}, latency of completed p50 "
          f"{pct([r[3] for r in done], 50):.2f} s p99 {pct([r[3] for r in done], 99):.2f} s")
stored = ad_photos()
print(f"acknowledged photos {acknowledged}, stored {stored}: "
      + ("nothing acknowledged was lost" if stored == acknowledged else "MISMATCH"))
sys.exit(0 if stored == acknowledged else 1)
