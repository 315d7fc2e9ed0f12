-- A discount code may name several automations (docs/panels.md "Discount codes for several
-- automations"): the set replaces discount_codes.automation_id. An empty set means every
-- automation.
CREATE TABLE discount_code_automations (
    discount_id   BIGINT NOT NULL REFERENCES discount_codes (id) ON DELETE CASCADE,
    automation_id BIGINT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    PRIMARY KEY (discount_id, automation_id)
);
CREATE INDEX discount_code_automations_automation_id_idx
    ON discount_code_automations (automation_id);

INSERT INTO discount_code_automations (discount_id, automation_id)
SELECT id, automation_id FROM discount_codes WHERE automation_id IS NOT NULL;

-- A code whose only automations are deleted must not turn into a code for every automation
-- (the empty set): it goes with them, as the old `automation_id ... ON DELETE CASCADE` did.
CREATE FUNCTION discount_codes_drop_orphaned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM discount_codes d
    WHERE EXISTS (SELECT 1 FROM discount_code_automations l
                  WHERE l.discount_id = d.id AND l.automation_id = OLD.id)
      AND NOT EXISTS (SELECT 1 FROM discount_code_automations l
                      WHERE l.discount_id = d.id AND l.automation_id <> OLD.id);
    RETURN OLD;
END;
$$;
CREATE TRIGGER automations_drop_orphaned_discounts
    BEFORE DELETE ON automations
    FOR EACH ROW EXECUTE FUNCTION discount_codes_drop_orphaned();

DROP INDEX discount_codes_automation_id_idx;
ALTER TABLE discount_codes
    DROP COLUMN automation_id,
    ADD COLUMN description TEXT;
