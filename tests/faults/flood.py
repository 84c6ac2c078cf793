"""`python -m tests.faults.flood URL SENDER SENDERS SECONDS PAUSE`: SENDERS clients each posting 1 MB messages
to Rasa's REST channel for SECONDS, PAUSE seconds apart (0: back to back), in a process of its own (so the
flood's own client work never slows the test's process); prints {"sent": n, "too_long": n, "seconds": [...]}
as JSON."""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

from channels.screening import TOO_LONG


def main() -> None:
    url, sender, senders, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    pause = float(sys.argv[5])
    body = json.dumps({"sender": sender, "message": "word " * 200_000}).encode()  # 1 MB
    results: list[tuple[bool, float]] = []
    deadline = time.monotonic() + seconds

    def send() -> None:
        with httpx.Client(trust_env=False, timeout=60) as client:
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = client.post(url, content=body, headers={"Content-Type": "application/json"})
                texts = [str(r.get("text") or "") for r in response.json()]
                results.append((texts == [TOO_LONG], time.monotonic() - started))
                time.sleep(pause)

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(
        json.dumps(
            {
                "sent": len(results),
                "too_long": sum(ok for ok, _ in results),
                "seconds": [s for _, s in results],
            }
        )
    )


if __name__ == "__main__":
    main()
