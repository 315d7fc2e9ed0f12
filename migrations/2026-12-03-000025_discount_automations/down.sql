-- A code that named several automations keeps the lowest id (narrower, never wider).
ALTER TABLE discount_codes
    DROP COLUMN description,
    ADD COLUMN automation_id BIGINT REFERENCES automations (id) ON DELETE CASCADE;
UPDATE discount_codes d SET automation_id = l.first
FROM (SELECT discount_id, min(automation_id) AS first
      FROM discount_code_automations GROUP BY discount_id) l
WHERE l.discount_id = d.id;
CREATE INDEX discount_codes_automation_id_idx ON discount_codes (automation_id)
    WHERE automation_id IS NOT NULL;
DROP TRIGGER automations_drop_orphaned_discounts ON automations;
DROP FUNCTION discount_codes_drop_orphaned();
DROP TABLE discount_code_automations;
