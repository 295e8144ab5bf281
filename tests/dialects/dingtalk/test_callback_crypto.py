"""DingTalk's callback encryption: the two test vectors of DingTalk's documentation, round trips, what receivers
people run (the ``dingtalk-sdk`` package's ``DingTalkCrypto``) make of Zida's messages, and what is refused."""

from __future__ import annotations

import base64

import pytest
from dingtalk.crypto import DingTalkCrypto

from zida.core.errors import InvalidArgument
from zida.dialects.dingtalk.callback_crypto import BLOCK, CallbackCrypto, CryptoError, aes_key, signature

# DingTalk's configure-stream-push FAQ (a seconds timestamp; the plaintext's random prefix dICkEDLj0eb6yAbc, pad 17).
VECTOR_1 = {
    "token": "123456",
    "aes_key": "1234567890123456789012345678901234567890123",
    "owner": "dingsnotzck6pm5veliw",
    "timestamp": "1614767836",
    "nonce": "A7Co0cJLMzIDtMMI",
    "encrypt": "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA==",
    "signature": "9a95a004dd16f5c307e849b994173f76aa26e5eb",
    "message": "success",
}
# DingTalk's DingCallbackCrypto3.py (a milliseconds timestamp).
VECTOR_2 = {
    "token": "mryue",
    "aes_key": "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    "owner": "ding6ccabc44d2c8d38b",
    "timestamp": "1608001896814",
    "nonce": "WL4PK6yA",
    "encrypt": "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4y"
    "hELOFchzNukR+t8SB/qk4ROMu3",
    "signature": "03044561471240d4a14bb09372dfcfd4fd0e40cb",
    "message": '{"EventType":"check_url"}',
}


@pytest.mark.parametrize("vector", [VECTOR_1, VECTOR_2], ids=["stream-push-faq", "DingCallbackCrypto3"])
def test_dingtalk_s_test_vectors(vector: dict[str, str]) -> None:
    crypto = CallbackCrypto(vector["token"], vector["aes_key"], vector["owner"])
    assert signature(vector["token"], vector["timestamp"], vector["nonce"], vector["encrypt"]) == vector["signature"]
    assert (
        crypto.verify(vector["signature"], vector["timestamp"], vector["nonce"], vector["encrypt"]) == vector["message"]
    )


def test_the_first_vector_is_reproduced_byte_for_byte() -> None:
    crypto = CallbackCrypto(VECTOR_1["token"], VECTOR_1["aes_key"], VECTOR_1["owner"])
    assert crypto.encrypt("success", random="dICkEDLj0eb6yAbc") == VECTOR_1["encrypt"]  # proves the 32-byte pad


@pytest.mark.parametrize("message", ["", "success", '{"EventType":"bpms_instance_change","title":"请假"}', "x" * 1000])
def test_zida_s_messages_are_what_the_receivers_people_run_read(message: str) -> None:
    crypto = CallbackCrypto("token-123", VECTOR_2["aes_key"], "dingcorp0001")
    envelope = crypto.envelope(message, "1700000000000", "nonce123")
    receiver = DingTalkCrypto("token-123", VECTOR_2["aes_key"], "dingcorp0001")  # the dingtalk-sdk package
    assert (
        receiver.decrypt_encrypt_str(envelope["msg_signature"], "1700000000000", "nonce123", envelope["encrypt"])
        == message
    )
    # …and what they answer is what Zida reads.
    reply = receiver.encrypt_message("success", nonce="abcdefgh", timestamp="1700000000001")
    assert crypto.verify(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]) == "success"
    assert len(base64.b64decode(envelope["encrypt"])) % BLOCK == 0


def test_what_is_refused() -> None:
    for bad in ("", "x" * 42, "x" * 44, "!" * 43, 43):
        with pytest.raises(InvalidArgument) as raised:
            aes_key(bad)  # type: ignore[arg-type]
        assert raised.value.reason == "callback.bad_aes_key"
    crypto = CallbackCrypto(VECTOR_1["token"], VECTOR_1["aes_key"], VECTOR_1["owner"])
    with pytest.raises(CryptoError, match="signature"):
        crypto.verify("0" * 40, VECTOR_1["timestamp"], VECTOR_1["nonce"], VECTOR_1["encrypt"])
    someone_else = CallbackCrypto(VECTOR_1["token"], VECTOR_1["aes_key"], "dingother")
    with pytest.raises(CryptoError, match="another corpId"):
        someone_else.decrypt(VECTOR_1["encrypt"])
    other_key = CallbackCrypto(VECTOR_1["token"], VECTOR_2["aes_key"], VECTOR_1["owner"])
    with pytest.raises(CryptoError):
        other_key.decrypt(VECTOR_1["encrypt"])
    for garbage in ("not base64!", base64.b64encode(b"short").decode(), ""):
        with pytest.raises(CryptoError):
            crypto.decrypt(garbage)
    with pytest.raises(ValueError):
        crypto.encrypt("x", random="short")
