//! A ticket a manager deleted (support's `DELETE /api/tickets/{id}`, docs/panels.md "Ticket
//! delete") leaves admin's ticket list, its view and the dashboard's counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{Call, With, World};
use reqwest::StatusCode;
use zimmer_jwt::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_ticket_leaves_the_admin_lists_and_counts() {
    let w = World::start(With::SUPPORT).await;
    let (customer, _) = w.user("sara@example.com", Role::Customer).await;
    let [(_, agent), (_, manager)] = w.staff([Role::SupportStaff, Role::Manager]).await;
    let mut ids = Vec::new();
    for title in ["keep", "delete"] {
        ids.push(
            w.insert(&format!(
                "INSERT INTO tickets (user_id, title, description) \
                 VALUES ({customer}, '{title}', 'x') RETURNING id"
            ))
            .await,
        );
    }
    let (kept, gone) = (ids[0], ids[1]);

    // The dashboard's delete goes to support directly; support staff may not.
    let support = w.support.as_ref().unwrap();
    support
        .delete(&format!("/api/tickets/{gone}"))
        .bearer_auth(&agent)
        .expect_status(StatusCode::FORBIDDEN)
        .await;
    support
        .delete(&format!("/api/tickets/{gone}"))
        .bearer_auth(&manager)
        .expect_status(StatusCode::NO_CONTENT)
        .await;

    for token in [&agent, &manager] {
        let v = w.json("/api/admin/tickets", token).await;
        let listed = zimmer_testkit::ids_in(&v["tickets"], "id");
        assert_eq!(listed, vec![kept], "{v}");
        assert_eq!(v["total"], 1);
        assert_eq!(
            w.get(&format!("/api/admin/tickets/{gone}"), token)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
    // Counted nowhere (the first dashboard read of this test, so nothing cached before).
    let d = w.json("/api/admin/dashboard", &manager).await;
    assert_eq!(d["data"]["total_tickets"], 1, "{d}");
    assert_eq!(d["data"]["all_tickets"], 1, "{d}");
    let u = w
        .json(&format!("/api/admin/users/{customer}"), &manager)
        .await;
    assert_eq!(u["tickets"]["total"], 1, "{u}");
    assert_eq!(u["tickets"]["open"], 1, "{u}");
}
