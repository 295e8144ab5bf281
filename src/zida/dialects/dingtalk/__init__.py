"""The DingTalk / Yida dialect: ``/v1.0/oauth2``, ``/gettoken``, ``/v1.0/yida``, ``/v2.0/yida``."""
