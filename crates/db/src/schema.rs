// The one diesel schema of the platform. Kept in step with `migrations/` by hand and checked by
// the `schema_matches_database` test, which compares every table and column here with the
// migrated database.

diesel::table! {
    users (id) {
        id -> Int8,
        name -> Text,
        email -> Text,
        phone_number -> Nullable<Text>,
        password_hash -> Text,
        role -> Text,
        is_active -> Bool,
        email_verified_at -> Nullable<Timestamptz>,
        twofa_enabled -> Bool,
        twofa_secret -> Nullable<Bytea>,
        last_login_at -> Nullable<Timestamptz>,
        deactivated_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Int8,
        rotation_counter -> Int4,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
        replaced_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    email_verification_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        token_hash -> Bytea,
        code_hash -> Bytea,
        attempts -> Int4,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    password_reset_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        token_hash -> Bytea,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    twofa_recovery_codes (id) {
        id -> Int8,
        user_id -> Int8,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Uuid,
        producer -> Text,
        event_type -> Text,
        payload -> Jsonb,
        headers -> Jsonb,
        created_at -> Timestamptz,
        attempts -> Int4,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    inbox (consumer, event_id) {
        consumer -> Text,
        event_id -> Uuid,
        event_type -> Text,
        handled_at -> Timestamptz,
    }
}

diesel::table! {
    automations (id) {
        id -> Int8,
        name -> Text,
        description -> Text,
        pricing_type -> Text,
        price_per_token -> Int8,
        demo_tokens -> Int8,
        status -> Text,
        is_listed -> Bool,
        health_status -> Text,
        last_health_at -> Nullable<Timestamptz>,
        provision_url -> Nullable<Text>,
        health_check_url -> Nullable<Text>,
        service_token_hash -> Nullable<Bytea>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        api_base_url -> Nullable<Text>,
        api_usage_url -> Nullable<Text>,
        api_kb_status_url -> Nullable<Text>,
        api_kb_reset_url -> Nullable<Text>,
        dashboard_url -> Nullable<Text>,
        service_token_tail -> Nullable<Text>,
    }
}

diesel::table! {
    user_automations (id) {
        id -> Int8,
        user_id -> Int8,
        automation_id -> Int8,
        telegram_bot_token -> Nullable<Text>,
        tokens_remaining -> Int8,
        demo_tokens -> Int8,
        is_demo_active -> Bool,
        demo_expired -> Bool,
        status -> Text,
        integration_status -> Text,
        provisioned_at -> Nullable<Timestamptz>,
        low_alert_sent -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        telegram_bot_token_sealed -> Nullable<Bytea>,
        telegram_bot_token_hash -> Nullable<Bytea>,
    }
}

diesel::table! {
    token_ledger (id) {
        id -> Int8,
        user_automation_id -> Int8,
        kind -> Text,
        delta -> Int8,
        demo_delta -> Int8,
        balance_after -> Int8,
        demo_balance_after -> Int8,
        source_key -> Text,
        usage_type -> Nullable<Text>,
        meta -> Jsonb,
        actor_id -> Nullable<Int8>,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    payments (id) {
        id -> Int8,
        user_id -> Int8,
        automation_id -> Int8,
        user_automation_id -> Int8,
        amount -> Int8,
        tokens_purchased -> Int8,
        method -> Text,
        gateway -> Text,
        description -> Nullable<Text>,
        transaction_id -> Nullable<Text>,
        authority -> Nullable<Text>,
        ref_id -> Nullable<Int8>,
        card_pan -> Nullable<Text>,
        status -> Text,
        failure_reason -> Nullable<Text>,
        discount_code -> Nullable<Text>,
        discount_percent -> Nullable<Int4>,
        return_path -> Nullable<Text>,
        verify_attempts -> Int4,
        next_check_at -> Nullable<Timestamptz>,
        last_checked_at -> Nullable<Timestamptz>,
        meta -> Jsonb,
        created_at -> Timestamptz,
        verified_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    discount_codes (id) {
        id -> Int8,
        code -> Text,
        percent_off -> Int4,
        active -> Bool,
        starts_at -> Nullable<Timestamptz>,
        ends_at -> Nullable<Timestamptz>,
        max_redemptions -> Nullable<Int4>,
        per_user_limit -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    discount_code_automations (discount_id, automation_id) {
        discount_id -> Int8,
        automation_id -> Int8,
    }
}

diesel::table! {
    discount_redemptions (id) {
        id -> Int8,
        discount_id -> Int8,
        user_id -> Int8,
        payment_id -> Int8,
        status -> Text,
        amount_before -> Int8,
        amount_discount -> Int8,
        amount_after -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    tickets (id) {
        id -> Int8,
        user_id -> Int8,
        title -> Text,
        description -> Text,
        status -> Text,
        priority -> Text,
        importance -> Text,
        category -> Nullable<Text>,
        user_automation_id -> Nullable<Int8>,
        assigned_to -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    ticket_messages (id) {
        id -> Int8,
        ticket_id -> Int8,
        author_id -> Int8,
        is_staff -> Bool,
        body -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ticket_attachments (id) {
        id -> Int8,
        message_id -> Int8,
        filename -> Text,
        content_type -> Text,
        size -> Int8,
        storage_key -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        user_id -> Int8,
        kind -> Text,
        title -> Text,
        body -> Text,
        data -> Jsonb,
        read_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        source_event_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    openai_keys (id) {
        id -> Int8,
        alias -> Text,
        key_ciphertext -> Bytea,
        key_tail -> Text,
        status -> Text,
        daily_limit -> Nullable<Int8>,
        used_today -> Int8,
        usage_date -> Date,
        last_used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        automation_id -> Nullable<Int8>,
        rpm_limit -> Nullable<Int8>,
        used_requests_minute -> Int8,
        minute_window_start -> Timestamptz,
        failure_count -> Int8,
    }
}

diesel::table! {
    admin_audit_log (id) {
        id -> Int8,
        actor_id -> Int8,
        action -> Text,
        target_type -> Text,
        target_id -> Nullable<Text>,
        details -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    backup_logs (id) {
        id -> Int8,
        backup_date -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        database_name -> Text,
        file_name -> Text,
        file_path -> Text,
        file_size -> Int8,
        checksum_sha256 -> Nullable<Text>,
        status -> Text,
        error -> Nullable<Text>,
        storage_location -> Text,
        verified -> Bool,
        verified_at -> Nullable<Timestamptz>,
        verify_method -> Nullable<Text>,
        trigger -> Text,
        actor_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    dashboard_daily (day) {
        day -> Date,
        tokens_consumed -> Int8,
        consumption_entries -> Int8,
        revenue -> Int8,
        payments_succeeded -> Int8,
        signups -> Int8,
        payments_created -> Int8,
        user_automations_created -> Int8,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    dashboard_rollup_state (id) {
        id -> Bool,
        closed_before -> Nullable<Date>,
        ledger_max_id -> Int8,
        payments_max_id -> Int8,
        users_max_id -> Int8,
        user_automations_max_id -> Int8,
        computed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    kb_status_history (id) {
        id -> Int8,
        user_id -> Int8,
        user_automation_id -> Int8,
        automation_id -> Int8,
        kb_health -> Text,
        backup_status -> Bool,
        supports_reset -> Bool,
        error_logs -> Jsonb,
        checked_at -> Timestamptz,
    }
}

diesel::table! {
    knowledge_entries (id) {
        id -> Int8,
        client_id -> Int8,
        category -> Text,
        answer -> Text,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    kb_templates (id) {
        id -> Int8,
        automation_id -> Int8,
        category -> Nullable<Text>,
        question -> Text,
        answer -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    fallback_logs (id) {
        id -> Int8,
        user_automation_id -> Int8,
        user_id -> Int8,
        automation_id -> Int8,
        message -> Text,
        error_type -> Nullable<Text>,
        status -> Text,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        resolved_by -> Nullable<Int8>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(email_verification_tokens -> users (user_id));
diesel::joinable!(password_reset_tokens -> users (user_id));
diesel::joinable!(twofa_recovery_codes -> users (user_id));
diesel::joinable!(user_automations -> users (user_id));
diesel::joinable!(user_automations -> automations (automation_id));
diesel::joinable!(token_ledger -> user_automations (user_automation_id));
// token_ledger's only FK to users is the (nullable) staff actor.
diesel::joinable!(token_ledger -> users (actor_id));
diesel::joinable!(payments -> users (user_id));
diesel::joinable!(payments -> automations (automation_id));
diesel::joinable!(payments -> user_automations (user_automation_id));
diesel::joinable!(discount_code_automations -> discount_codes (discount_id));
diesel::joinable!(discount_code_automations -> automations (automation_id));
diesel::joinable!(discount_redemptions -> discount_codes (discount_id));
diesel::joinable!(discount_redemptions -> users (user_id));
diesel::joinable!(discount_redemptions -> payments (payment_id));
// tickets has two FKs to users and diesel allows one joinable! per pair: this one is the owner.
// tickets.assigned_to -> users (id) needs an explicit join, e.g. on a `diesel::alias!` of users
// with `.on(tickets::assigned_to.eq(assignee.field(users::id).nullable()))`.
diesel::joinable!(tickets -> users (user_id));
diesel::joinable!(tickets -> user_automations (user_automation_id));
diesel::joinable!(ticket_messages -> tickets (ticket_id));
diesel::joinable!(ticket_messages -> users (author_id));
diesel::joinable!(ticket_attachments -> ticket_messages (message_id));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(admin_audit_log -> users (actor_id));
diesel::joinable!(openai_keys -> automations (automation_id));
diesel::joinable!(backup_logs -> users (actor_id));
// knowledge_entries and fallback_logs have two FKs to users each: these are the customer;
// created_by / resolved_by need an explicit join.
diesel::joinable!(knowledge_entries -> users (client_id));
diesel::joinable!(kb_templates -> automations (automation_id));
diesel::joinable!(fallback_logs -> users (user_id));
diesel::joinable!(fallback_logs -> user_automations (user_automation_id));
diesel::joinable!(fallback_logs -> automations (automation_id));
diesel::joinable!(kb_status_history -> users (user_id));
diesel::joinable!(kb_status_history -> user_automations (user_automation_id));
diesel::joinable!(kb_status_history -> automations (automation_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    email_verification_tokens,
    password_reset_tokens,
    twofa_recovery_codes,
    outbox,
    inbox,
    automations,
    user_automations,
    token_ledger,
    payments,
    discount_codes,
    discount_code_automations,
    discount_redemptions,
    tickets,
    ticket_messages,
    ticket_attachments,
    notifications,
    openai_keys,
    admin_audit_log,
    backup_logs,
    knowledge_entries,
    kb_templates,
    fallback_logs,
    kb_status_history,
);
