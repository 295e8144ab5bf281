// A Stream-mode client as integrators write one with the official npm `dingtalk-stream` SDK, unmodified.
//
// node stream_client.js BASE_URL CLIENT_ID CLIENT_SECRET OUT_FILE [LATER_FIRST]
//
// Points the SDK's gateway at the Zida at BASE_URL, subscribes to every event type (the SDK's default) and appends
// each event it receives to OUT_FILE as one JSON line: eventType, eventId, eventBornTime, eventCorpId,
// eventUnifiedAppId, data (parsed) and ack — "ok" (answered {status: SUCCESS}) or "later" (the first LATER_FIRST
// events are answered {status: LATER}, so the server sends them again).
'use strict';

const fs = require('fs');
const constants = require('dingtalk-stream/constants');

const [base, clientId, clientSecret, out, laterFirst] = process.argv.slice(2);
constants.GATEWAY_URL = `${base}/v1.0/gateway/connections/open`;
const { DWClient, EventAck } = require('dingtalk-stream');

const later = Number(laterFirst || 0);
let seen = 0;

const client = new DWClient({ clientId, clientSecret });
client.registerAllEventListener((message) => {
  seen += 1;
  const failing = seen <= later;
  const h = message.headers;
  const line = {
    eventType: h.eventType,
    eventId: h.eventId,
    eventBornTime: h.eventBornTime,
    eventCorpId: h.eventCorpId,
    eventUnifiedAppId: h.eventUnifiedAppId,
    topic: h.topic,
    messageId: h.messageId,
    data: JSON.parse(message.data),
    ack: failing ? 'later' : 'ok',
  };
  fs.appendFileSync(out, JSON.stringify(line) + '\n');
  return { status: failing ? EventAck.LATER : EventAck.SUCCESS };
});
client.connect();
