"""A Python client for Zida (and for the platforms it stands in for): sync :class:`Client` and async
:class:`AsyncClient` over httpx.

* **Auth.** ``Client(base_url, app_key, app_secret)`` gets DingTalk tokens (``POST /v1.0/oauth2/accessToken``);
  ``dialect="weda"`` gets WeDa client-credential tokens (``POST /auth/v1/token/clientCredential``, Basic auth).
  The token is cached and renewed ``refresh_before`` seconds before it expires (default: 10 minutes, as DingTalk
  advises, or a quarter of a short lifetime), by one request for all the callers (threads or tasks) needing it at
  once; a call answered "invalid token" renews it once and is sent again.
* **Retries.** A call that may safely be sent twice (every GET and DELETE, searches, lists, and any call made with
  ``idempotent=True``) is retried on a connection error, 429 and 5xx, up to ``retries`` times, with exponential
  backoff and jitter, waiting at least what ``Retry-After`` asks (asked for more than 30 s, it raises at once).
  Writes are sent once.
* **Errors.** Every refusal raises :class:`ApiError` with the HTTP status, the dialect's code and message and the
  request id, whatever the dialect's error shape (``{code, message, requestid}``, WeDa's ``{code, message,
  requestId}`` or ``{"Response": {"Error"}}``, the admin API's ``{"error": {code, message}}``, oapi's ``{errcode,
  errmsg}``); an answer that is not the JSON expected (a proxy's HTML page, an empty body) is code
  ``InvalidResponse``.
* **Helpers.** Yida records (save, get, update, delete, :meth:`Client.search_records` iterating over every page),
  approvals (start, get, running tasks, execute), WeDa data models (create, get, list iterating over every page);
  :meth:`Client.call` reaches any other route.

    from zida.client import App, Client

    app = App("APP_DEMO00000000000000001", "ST-DEMO-CHANGE-ME")
    with Client("http://127.0.0.1:8080", "dingdemokey0001", "demo-secret-change-me") as zida:
        iid = zida.save_record(app, "FORM-EXPENSE0000000000000001", {"textField_title0001": "出差"}, user_id="wang")
        for record in zida.search_records(app, "FORM-EXPENSE0000000000000001", user_id="wang"):
            print(record["formInstanceId"], record["formData"])
"""

from zida.client.asynchronous import AsyncClient
from zida.client.core import ApiError, App
from zida.client.sync import Client

__all__ = ["ApiError", "App", "AsyncClient", "Client"]
