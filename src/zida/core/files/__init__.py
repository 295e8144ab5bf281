"""Files: uploads kept by a storage backend (a local directory or an S3-compatible service), their rows, who may read
them, temporary URLs, attachments in records and approvals, and their lifecycle.

* ``models``: ``StoredFile`` and the limits (``FileLimits``) from the settings.
* ``storage``: the ``FileStorage`` interface and its two backends; bytes are streamed, never held whole.
* ``sniff``: the content type from the bytes (never trusted from the client), the extension from the name.
* ``actions``: upload (limits, quota, sniffing, one transaction for the row, its audit row and its event), WeDa's
  two-step upload (a slot, then the bytes), delete.
* ``access``: who may read a file, and the signed temporary URLs.
* ``attachments``: an AttachmentField/ImageField item naming a Zida file, checked and completed when a record is
  written.
* ``lifecycle``: expiry of unattached uploads and orphans (``zida files gc``), moving the bytes to S3
  (``zida files migrate``).
"""
