//! Ticket delete (docs/panels.md "Ticket delete"): managers only; the ticket leaves every list,
//! count and view for customers and staff; its messages stay; a second delete is a 404.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use zimmer_jwt::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_deletes_a_ticket_and_it_is_gone_for_everyone_but_its_messages_stay() {
    let s = Support::start().await;
    let (_customer, ct) = s.user("sara@example.com", Role::Customer).await;
    let (_staff, st) = s.user("reza@example.com", Role::SupportStaff).await;
    let (_tech, tt) = s.user("tara@example.com", Role::TechnicalTeam).await;
    let (_manager, mt) = s.user("mina@example.com", Role::Manager).await;
    let gone = s.ticket(&ct, "to delete", "first message").await;
    let kept = s.ticket(&ct, "to keep", "another").await;
    assert_eq!(
        s.post_message(gone, &st, "a staff reply").await.0,
        StatusCode::CREATED
    );

    // Only a manager may delete (the ticket's owner and the other staff roles get 403).
    for token in [&ct, &st, &tt] {
        let v = s
            .delete(&format!("/api/tickets/{gone}"), token)
            .json_expecting(StatusCode::FORBIDDEN)
            .await;
        assert!(v["detail"].is_string());
    }
    // Bodiless, even with a JSON content type (the dashboard's AX call).
    assert_eq!(
        s.delete(&format!("/api/tickets/{gone}"), &mt)
            .header("content-type", "application/json")
            .status()
            .await,
        StatusCode::NO_CONTENT
    );

    // Again, or an unknown id: 404 JSON.
    for id in [gone, 999_999] {
        let v = s
            .delete(&format!("/api/tickets/{id}"), &mt)
            .json_expecting(StatusCode::NOT_FOUND)
            .await;
        assert!(v["detail"].is_string());
    }

    // Gone from every list, count and view, for the customer and for staff.
    for token in [&ct, &st, &mt] {
        let list = s.read("/api/tickets", token).await;
        assert_eq!(list["total"], 1, "{list}");
        let ids = zimmer_testkit::ids_in(&list["tickets"], "id");
        assert_eq!(ids, vec![kept]);
        assert_eq!(
            s.get(&format!("/api/tickets/{gone}"), token).status().await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            s.update_ticket(gone, token, json!({"message": "still there?"}))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            s.post_message(gone, token, "still there?").await.0,
            StatusCode::NOT_FOUND
        );
    }
    // The staff filters too.
    let list = s.read("/api/tickets?status=in_progress", &mt).await;
    assert_eq!(list["total"], 0, "{list}");
    // Admin's internal view of it is gone as well.
    assert_eq!(
        s.app
            .get(&format!("/internal/tickets/{gone}"))
            .header(
                "x-internal-token",
                zimmer_config::dev_internal_token("admin"),
            )
            .status()
            .await,
        StatusCode::NOT_FOUND
    );

    // The row and its messages stay for audit.
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) AS n FROM tickets WHERE id = {gone} AND deleted_at IS NOT NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) AS n FROM ticket_messages WHERE ticket_id = {gone}"
        ))
        .await,
        2
    );
}
