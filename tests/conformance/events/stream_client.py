"""A Stream-mode client as integrators write one with the official PyPI ``dingtalk-stream`` SDK, unmodified.

``python stream_client.py BASE_URL CLIENT_ID CLIENT_SECRET OUT_FILE [FAIL_FIRST]``: connects to the Zida at
``BASE_URL`` (the SDK reads ``DINGTALK_OPENAPI_ENDPOINT`` when it is imported, so this runs in a process of its own),
subscribes to every event type and appends each event it receives to ``OUT_FILE`` as one JSON line: ``eventType,
eventId, eventBornTime, eventCorpId, eventUnifiedAppId, data`` and ``ack`` — ``ok`` (answered
``AckMessage.STATUS_OK``) or ``fail`` (the first ``FAIL_FIRST`` events are answered ``STATUS_SYSTEM_EXCEPTION``, so
the server sends them again).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main() -> None:
    base, client_id, secret, out = sys.argv[1:5]
    fail_first = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    os.environ["DINGTALK_OPENAPI_ENDPOINT"] = base
    import dingtalk_stream  # after the endpoint is set
    from dingtalk_stream import AckMessage

    seen = 0

    class Handler(dingtalk_stream.EventHandler):
        async def process(self, event: Any) -> tuple[int, str]:
            nonlocal seen
            seen += 1
            failing = seen <= fail_first
            headers = event.headers
            line = {
                "eventType": headers.event_type,
                "eventId": headers.event_id,
                "eventBornTime": headers.event_born_time,
                "eventCorpId": headers.event_corp_id,
                "eventUnifiedAppId": headers.event_unified_app_id,
                "topic": headers.topic,
                "messageId": headers.message_id,
                "data": event.data,
                "ack": "fail" if failing else "ok",
            }
            sink.write(json.dumps(line, ensure_ascii=False) + "\n")
            if failing:
                return AckMessage.STATUS_SYSTEM_EXCEPTION, "not now"
            return AckMessage.STATUS_OK, "OK"

    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(client_id, secret))
    client.register_all_event_handler(Handler())
    # Line-buffered: each event is in the file as soon as it is written, before its ack is sent.
    with open(out, "a", encoding="utf-8", buffering=1) as sink:
        client.start_forever()


if __name__ == "__main__":
    main()
