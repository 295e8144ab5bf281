"""The web console: people sign in, work through their approvals, fill in forms and find records; admins manage the
organization's app credentials (README "Console").

Server-rendered pages (Jinja2, every value escaped) with one small script (``static/console.js``: sub-table rows,
uploads with progress, the people picker) and one style sheet; nothing is fetched from elsewhere and nothing is
built. The console is a client of the core like the API dialects: it calls the same services, under the same access
policy, with the signed-in user as the actor, and writes no SQL. ``zida.console.web`` is its request layer
(sessions in cookies, CSRF, security headers, error pages); ``zida.console.routes`` lists its pages.
"""
