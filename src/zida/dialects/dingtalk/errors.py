"""The one table mapping core errors to DingTalk's wire errors (HTTP status, ``code``, message)."""

from __future__ import annotations

from typing import Any

from zida.core.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    TooExpensive,
    Unauthenticated,
    Unavailable,
    Unsupported,
    ZidaError,
)
from zida.dialects.dingtalk.names import PARAMS

__all__ = ["ERRORS", "error_body", "wire_error"]

# (exception class, reason) -> (HTTP status, code, message prefix). Reason None = any other reason.
# Yida business codes answer HTTP 400 (spec yida-openapi §2.3); gateway codes as DingTalk sends them (§2.2).
ERRORS: dict[tuple[type[ZidaError], str | None], tuple[int, str, str]] = {
    (Unauthenticated, "auth.token_missing"): (
        400,
        "AuthenticationFailed.MissingParameter",
        "缺少参数：x-acs-dingtalk-access-token",
    ),
    (Unauthenticated, "auth.token_invalid"): (400, "InvalidAuthentication", "不合法的access_token"),
    (Unauthenticated, "auth.token_expired"): (400, "InvalidAuthentication", "不合法的access_token"),
    (Unauthenticated, "auth.bad_credentials"): (
        400,
        "invalidClientIdOrSecret",
        "无效的clientId或者clientSecret",
    ),
    (Unauthenticated, "auth.invalid_client"): (400, "invalid.client", "无效的client_id或client_secret"),
    (Unauthenticated, None): (400, "InvalidAuthentication", "不合法的access_token"),
    (InvalidArgument, "auth.unsupported_grant_type"): (400, "unsupported.grant.type", "不支持的grant_type"),
    (InvalidArgument, "auth.credentials_missing"): (400, "missingParameter", "缺少必填参数"),
    (PermissionDenied, "auth.scope_missing"): (
        403,
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
        "没有调用该接口的权限，接口权限申请参考：https://open.dingtalk.com/document/orgapp-server/add-api-permission",
    ),
    (PermissionDenied, "auth.bad_org_token"): (
        400,
        "invalidState.authorization.invalidAuthorizationInformation",
        "无效的授权信息",
    ),
    (PermissionDenied, "app.bad_system_token"): (
        400,
        "invalidParameter.parameter.accessKeyNotMatch",
        "接入密钥不匹配",
    ),
    (PermissionDenied, None): (400, "noPermission.permission.deny", "没有权限"),
    (NotFound, "app.not_found"): (400, "applicationNotExist.application.notExits", "应用不存在"),
    (NotFound, "form.not_found"): (400, "invalidState.form.formNotExist", "表单不存在"),
    (InvalidArgument, "form.other_form"): (400, "invalidParameter.parameter.incorrectFormUuid", "表单UUID不正确"),
    (NotFound, "record.not_found"): (
        400,
        "invalidState.form.dataDoesNotExistOrIsDeleted",
        "数据不存在或已被删除",
    ),
    (NotFound, "user.not_found"): (400, "failure.user.userNotExist", "用户不存在"),
    (NotFound, "route.not_found"): (404, "NotFound", "请求的URI地址不存在"),
    (NotFound, None): (400, "invalidParameter.parameter.error", "资源不存在"),
    (InvalidArgument, "argument.missing"): (400, "invalidParameter.parameter.parameterIsEmpty", "不能为空"),
    (InvalidArgument, "request.malformed_json"): (400, "invalidParameter", "请求体不是合法的JSON"),
    (InvalidArgument, "request.method_not_allowed"): (405, "MethodNotAllowed", "不支持的HTTP方法"),
    (InvalidArgument, "request.too_large"): (413, "RequestTooLarge", "请求体过大"),
    # The request budget (README "Limits"); past-budget searches and pages are TooExpensive (its row below).
    (InvalidArgument, "request.too_deep"): (400, "invalidParameter.parameter.error", "JSON嵌套层数过多"),
    # A JSON number literal no double holds (1e-400, 1e400): the parameter's JSON, as a literal 1e400 always was.
    (InvalidArgument, "request.number_out_of_range"): (400, "invalidParameter.parameter.error", "数字超出范围"),
    (InvalidArgument, "argument.too_long"): (400, "invalidParameter.parameter.error", "参数过长"),
    (InvalidArgument, "search.too_large"): (400, "invalidParameter.parameter.error", "查询条件过多"),
    (InvalidArgument, "search.value_too_long"): (400, "invalidParameter.parameter.error", "查询值过长"),
    (InvalidArgument, "form_data.expect_number"): (
        400,
        "invalidParameter.parameter.expectDoubleButNonNumeric",
        "期望数字类型但传入了非数字",
    ),
    (InvalidArgument, "form_data.invalid"): (400, "invalidState.form.formDataIsBlank", "表单数据格式错误"),
    (InvalidArgument, "search.expect_number"): (
        400,
        "invalidParameter.parameter.expectDoubleButNonNumeric",
        "期望数字类型但传入了非数字",
    ),
    (InvalidArgument, "search.unsupported_operator"): (
        400,
        "invalidState.openSearch.componentCanNotSupportThisOperatorType",
        "组件不支持该操作符",
    ),
    (InvalidArgument, None): (400, "invalidParameter.parameter.error", "参数错误"),
    (Conflict, "form.process_form_cannot_save"): (
        400,
        "failure.operation.processFormCanNotSaveReceiptFormData",
        "流程表单不能保存为普通表单数据",
    ),
    (Conflict, "form.receipt_form_cannot_start"): (
        400,
        "failure.operation.receiptFormCanNotStartInstance",
        "普通表单不能发起流程",
    ),
    # Approvals: tasks and process instances.
    (Conflict, "task.not_running"): (400, "invalidState.instance.instanceStatusHasChanged", "流程实例状态已变更"),
    (Conflict, "instance.finished"): (400, "invalidState.instance.instanceStatusHasChanged", "流程实例状态已变更"),
    (Conflict, "instance.concurrent_change"): (
        400,
        "invalidState.instance.instanceStatusHasChanged",
        "流程实例状态已变更",
    ),
    (NotFound, "task.not_found"): (400, "failure.task.failedToPerformApproval", "执行审批任务失败"),
    (PermissionDenied, "task.not_assignee"): (400, "failure.task.failedToPerformApproval", "执行审批任务失败"),
    (InvalidArgument, "task.unsupported_out_result"): (
        400,
        "invalidParameter.task.unsupportedOutResultType",
        "不支持的审批结果类型",
    ),
    (Conflict, "task.redirect_not_running"): (
        400,
        "noPermission.process.onlyRunningTasksCanBeRedirected",
        "只有运行中的任务可以转交",
    ),
    (PermissionDenied, "task.return_not_current_approver"): (
        400,
        "noPermission.process.onlyCurrentApproverCanReturnProcessInstance",
        "只有当前审批人可以退回流程",
    ),
    (Conflict, "process.expect_one_task"): (400, "invalidState.process.expectOnlyOneTask", "期望只有一个任务"),
    (InvalidArgument, "process.empty_instance_ids"): (
        400,
        "invalidParameter.process.emptyProcessInstanceIds",
        "流程实例ID不能为空",
    ),
    (Conflict, "form.batch_delete_process_data"): (
        400,
        "failure.operation.onlyReceiptDataCanBeDeletedInBatches",
        "只有普通表单数据可以批量删除",
    ),
    # The OA workflow API (workflow_1_0, zida.dialects.dingtalk.oa_workflow): its own codes (spec §2.2).
    (NotFound, "oa.instance_not_found"): (400, "processInstanceNotExist", "审批实例不存在"),
    (InvalidArgument, "oa.instance_id"): (400, "processInstanceIdError", "审批实例ID错误"),
    (NotFound, "oa.process_code"): (400, "processCodeError", "processCode错误"),
    (InvalidArgument, "oa.form_converter"): (400, "formConverterError", "表单数据校验失败，失败控件"),
    (InvalidArgument, "oa.target_select_missing"): (400, "targetSelectApproverMissing", "发起人自选审批人缺失"),
    (InvalidArgument, "oa.target_select_scope"): (400, "targetSelectApproverScopeError", "发起人自选审批人范围错误"),
    (InvalidArgument, "oa.invalid_parameter"): (400, "invalidParameter", "参数错误"),
    (InvalidArgument, "oa.missing_parameter"): (400, "missingParameter", "缺少必填参数"),
    (InvalidArgument, "oa.invalid_end_time"): (400, "invalidEndTime", "时间范围错误"),
    (NotFound, "oa.user_not_found"): (400, "invalidParameter", "用户不存在"),
    (Conflict, "oa.instance_status"): (400, "aflowProcessInstStatusException", "审批实例状态异常"),
    (Conflict, "oa.task_not_executable"): (400, "aflowProcessInstCanNotBeExecuted", "审批任务不可执行"),
    (PermissionDenied, "oa.forbidden"): (403, "forbidden.accessDenied", "当前用户无此操作权限"),
    (Unsupported, "oa.unsupported"): (400, "invalidParameter.operation.notSupported", "Zida不支持该操作"),
    # To-dos (todo_1_0): "task exist" is DingTalk's answer to a repeated sourceId; the others are Zida's.
    (InvalidArgument, "todo.unknown_user"): (400, "paramError", "用户不存在"),
    (NotFound, "todo.not_found"): (400, "invalidParameter.todo.notExist", "待办不存在"),
    (Conflict, "todo.source_exists"): (400, "todo.taskCreate.paramError", "task exist"),
    (Conflict, "todo.follows_approval"): (400, "forbidden.todo.followsApproval", "审批待办随审批任务变化"),
    (Conflict, "db.busy"): (503, "ServiceUnavailable", "服务繁忙，请稍后重试"),
    (Conflict, None): (400, "invalidState.data.conflict", "数据状态冲突"),
    (RateLimited, None): (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "请求过于频繁"),
    (Unsupported, None): (400, "invalidParameter.operation.notSupported", "Zida不支持该操作"),
    (TooExpensive, None): (400, "invalidParameter.request.tooExpensive", "请求过于复杂，请缩小查询范围"),
    # The database out of reach (restarting): the gateway's own answer when a backend is down, with Retry-After.
    (Unavailable, None): (503, "ServiceUnavailable", "服务暂不可用，请稍后重试"),
}

# Errors the DingTalk gateway itself answers (before any Yida code runs): their message is fixed text.
_GATEWAY_REASONS = frozenset({"auth.token_missing", "auth.token_invalid", "auth.token_expired", "auth.scope_missing"})

# Form-data problems that are not listed above share Yida's generic invalid-form-data code.
_PREFIX_FALLBACK = {"form_data.": (400, "invalidState.form.invalidFormData", "表单数据校验失败")}


def wire_error(exc: ZidaError) -> tuple[int, str, str]:
    """(status, code, message) for a core error."""
    for klass in type(exc).__mro__:
        if (klass, exc.reason) in ERRORS:
            status, code, prefix = ERRORS[(klass, exc.reason)]
            break
    else:
        for prefix_key, mapped in _PREFIX_FALLBACK.items():
            if exc.reason.startswith(prefix_key):
                status, code, prefix = mapped
                break
        else:
            for klass in type(exc).__mro__:
                if (klass, None) in ERRORS:
                    status, code, prefix = ERRORS[(klass, None)]
                    break
            else:
                status, code, prefix = 500, "unknownError", "未知错误"
    if exc.reason in _GATEWAY_REASONS:
        return status, code, prefix  # the gateway's own words, exactly as api.dingtalk.com sends them
    return status, code, f"{prefix}:{exc.render(PARAMS)}"


def error_body(exc: ZidaError, request_id: str) -> tuple[int, dict[str, Any]]:
    """The JSON body DingTalk answers with, and its status."""
    status, code, message = wire_error(exc)
    body: dict[str, Any] = {"code": code, "message": message, "requestid": request_id}
    if exc.reason == "auth.scope_missing":
        body["accessdenieddetail"] = {"requiredScopes": exc.details.get("required_scopes", [])}
    return status, body
