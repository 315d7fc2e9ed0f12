use utoipa::ToSchema;
use zimmer_http::{
    WindowPage, route,
    routes::{DocInfo, Route},
};

use zimmer_events::contracts::internal::notifications::{
    DirectNotifications, DirectNotificationsCreated,
};

use crate::{
    domain::views::{MessageView, NotificationView, TicketView},
    handlers::{ListPaging, internal, notifications, stream, tickets},
};

/// Every route of support, as the gateway forwards them (docs/api.md "support"; docs/panels.md shapes),
/// and the internal API (never routed by the gateway; `X-Internal-Token`):
///
/// | method | path | what |
/// | --- | --- | --- |
/// | GET | /internal/tickets/{id} | any ticket with its messages (admin's ticket view; all of them up to the 200-message cap, or `messages_limit`/`messages_offset`) |
/// | PUT | /internal/tickets/{id} | `{actor_id, status?, priority?, importance?, assigned_to?, message?}`: a change made by that staff member in the dashboard |
/// | POST | /internal/tickets/{id}/messages | `{actor_id, message}`: a staff reply from the dashboard |
/// | POST | /internal/notifications | `{user_ids, type, title, body, data?, actor_id}`: notifications to chosen users (admin only) → `{created, skipped}` |
///
/// Fixed paths are registered before `{id}` paths with the same prefix.
pub const DOC: DocInfo = DocInfo {
    title: "Zimmer support API",
    description: "Tickets, notifications and their live stream (docs/api.md \"support\"), and \
        the internal API for admin (tag `internal`, never routed by the gateway). Errors are \
        `{detail, code}`.",
};

/// Every route of support, in matching order: this table registers them and documents them
/// (crates/http/src/routes.rs).
pub const ROUTES: &[Route] = &[
    Route::openapi_document("/api/support/openapi.json"),
    route!(POST "/api/tickets" => tickets::create, "Open a ticket: JSON, or multipart with one attachment (PNG, JPEG, PDF, text; 5 MiB)")
        .json_or_form::<tickets::CreateBody>().created::<TicketView>(),
    route!(GET "/api/tickets" => tickets::list, "Tickets (own; all for support staff and managers): `status`, `priority`, `assigned_to`, `user_id`, paging")
        .ok::<TicketList>()
        .query::<tickets::ListQuery>().query::<ListPaging>(),
    route!(GET "/api/tickets/{id}" => tickets::get, "A ticket with one page of its messages (`messages_limit`, `messages_offset`)")
        .ok::<TicketView>()
        .query::<tickets::ThreadQuery>(),
    route!(PUT "/api/tickets/{id}" => tickets::update, "Change status, priority, importance, assignee (the owner may only close), or add `{message}`")
        .body::<tickets::UpdateBody>().ok::<TicketView>(),
    route!(DELETE "/api/tickets/{id}" => tickets::delete, "Delete a ticket (managers)").status(204),
    route!(POST "/api/tickets/{id}/messages" => tickets::add_message, "Add a message: JSON `{message}` or multipart with an attachment")
        .json_or_form::<tickets::MessageBody>().created::<MessageView>(),
    route!(GET "/api/tickets/{id}/messages/{message_id}/attachment" => tickets::attachment, "A message's attachment, as a download")
        .answers_as::<Binary>(&["application/octet-stream"]),
    route!(GET "/api/notifications" => notifications::list, "The caller's notifications, newest first: `limit`/`offset` or paging, `type`, `read`")
        .ok::<WindowPage<NotificationView>>()
        .query::<notifications::ListQuery>().query::<ListPaging>(),
    route!(GET "/api/notifications/stream" => stream::stream, "Server-Sent Events: one default event per new notification (data = the notification); `?token=` or Bearer")
        .answers_as::<NotificationView>(&["text/event-stream"])
        .query::<stream::StreamQuery>(),
    route!(GET "/api/notifications/unread-count" => notifications::unread_count, "`{count}`").ok::<UnreadCount>(),
    route!(POST "/api/notifications/mark-read" => notifications::mark_read_many, "Mark `{ids}` read: `{updated}`")
        .body::<notifications::IdsBody>().ok::<Updated>(),
    route!(POST "/api/notifications/mark-all-read" => notifications::mark_all_read, "Mark all read: `{updated}`").ok::<Updated>(),
    route!(POST "/api/notifications/mark-read/{id}" => notifications::mark_read_one, "Mark one read: `{updated}`").ok::<Updated>(),
    route!(DELETE "/api/notifications/{id}" => notifications::delete, "Delete one notification").status(204),
    // internal (see above)
    route!(POST "/internal/notifications" => internal::notify_users, "Notifications to chosen users (admin): `{created, skipped}`")
        .body::<DirectNotifications>().ok::<DirectNotificationsCreated>(),
    route!(GET "/internal/tickets/{id}" => internal::get, "Any ticket with its messages").ok::<TicketView>().query::<tickets::ThreadQuery>(),
    route!(PUT "/internal/tickets/{id}" => internal::update, "A change made by a staff member in the dashboard")
        .body::<internal::ActingUpdate>().ok::<TicketView>(),
    route!(POST "/internal/tickets/{id}/messages" => internal::add_message, "A staff reply from the dashboard")
        .body::<internal::ActingMessage>().created::<MessageView>(),
];

// Shapes the handlers write with `json!`, described here for the document (docs/panels.md
// "The user panel" reads them; crates/platform-tests checks the panel's fields are in them).

/// `GET /api/tickets`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TicketList {
    tickets: Vec<TicketView>,
    total: i64,
    page: i64,
    page_size: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UnreadCount {
    count: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Updated {
    /// How many notifications changed.
    updated: i64,
}

/// A file's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Binary(Vec<u8>);
