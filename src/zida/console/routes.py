"""The console's routes, and its mount (``zida.server`` adds it when ``ZIDA_CONSOLE`` is on)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from zida.console import admin, approvals, notifications, org_admin, pages, records
from zida.console.web import CONSOLE, ConsoleMount, mount

__all__ = ["console_mount", "routes"]


def routes() -> list[BaseRoute]:
    """Every console page and action."""
    c = CONSOLE
    return [
        Route("/", pages.root, methods=["GET"]),
        Route(c, pages.root, methods=["GET"]),
        Route(f"{c}/", pages.home, methods=["GET"]),
        Route(f"{c}/signin", pages.sign_in, methods=["GET", "POST"]),
        Route(f"{c}/signout", pages.sign_out, methods=["POST"]),
        Route(f"{c}/inbox", pages.inbox, methods=["GET"]),
        Route(f"{c}/inbox/read", notifications.mark_notifications_read, methods=["POST"]),
        Route(f"{c}/apps", pages.apps, methods=["GET"]),
        Route(f"{c}/approvals/{{instance_id}}", approvals.approval, methods=["GET", "POST"]),
        Route(f"{c}/forms/{{form_uuid}}/new", records.fill, methods=["GET", "POST"]),
        Route(f"{c}/forms/{{form_uuid}}/records", records.find_records, methods=["GET"]),
        Route(f"{c}/forms/{{form_uuid}}/export", records.export_records, methods=["GET"]),
        Route(f"{c}/forms/{{form_uuid}}/associations/{{field_id}}", records.associations, methods=["GET"]),
        Route(f"{c}/records/{{instance_id}}", records.record, methods=["GET"]),
        Route(f"{c}/records/{{instance_id}}/edit", records.edit_record, methods=["GET", "POST"]),
        Route(f"{c}/records/{{instance_id}}/remarks", records.add_remark, methods=["POST"]),
        Route(f"{c}/records/{{instance_id}}/files/{{file_id}}", records.download, methods=["GET"]),
        Route(f"{c}/files", records.upload, methods=["POST"]),
        Route(f"{c}/people", records.people, methods=["GET"]),
        Route(f"{c}/departments", records.departments, methods=["GET"]),
        Route(f"{c}/admin/credentials", admin.credentials_page, methods=["GET", "POST"]),
        Route(f"{c}/admin/credentials/{{client_id}}/revoke", admin.revoke, methods=["POST"]),
        Route(f"{c}/admin/credentials/{{client_id}}/rotate", admin.rotate, methods=["POST"]),
        Route(f"{c}/admin/subscriptions", admin.subscriptions_page, methods=["GET"]),
        Route(f"{c}/admin/subscriptions/{{subscription_id}}/redeliver", admin.redeliver_failed, methods=["POST"]),
        Route(f"{c}/admin/subscriptions/{{subscription_id}}/failed", admin.failed_deliveries, methods=["GET"]),
        Route(
            f"{c}/admin/subscriptions/{{subscription_id}}/deliveries/{{delivery_id}}/redeliver",
            admin.redeliver_one,
            methods=["POST"],
        ),
        Route(f"{c}/admin/apps", admin.apps_page, methods=["GET"]),
        Route(f"{c}/admin/people", org_admin.people_page, methods=["GET", "POST"]),
        Route(f"{c}/admin/people/{{user_id}}", org_admin.user_page, methods=["GET", "POST"]),
        Route(f"{c}/admin/people/{{user_id}}/active", org_admin.user_active, methods=["POST"]),
        Route(f"{c}/admin/departments", org_admin.departments_page, methods=["GET", "POST"]),
        Route(f"{c}/admin/departments/{{dept_id}}", org_admin.update_department, methods=["POST"]),
        Route(f"{c}/admin/departments/{{dept_id}}/delete", org_admin.delete_department, methods=["POST"]),
        Route(f"{c}/admin/roles", org_admin.roles_page, methods=["GET", "POST"]),
        Route(f"{c}/admin/roles/{{role_id}}", org_admin.update_role, methods=["POST"]),
        Route(f"{c}/admin/roles/{{role_id}}/delete", org_admin.delete_role, methods=["POST"]),
        Mount(f"{c}/static", StaticFiles(packages=[("zida.console", "static")]), name="console-static"),
    ]


def console_mount() -> ConsoleMount:
    """The console's mount."""
    return mount(routes())
