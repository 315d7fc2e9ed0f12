DROP INDEX IF EXISTS discount_redemptions_one_open_per_user;
-- The old constraint knows no 'over_limit': such a redemption was used, so it counts as
-- confirmed (its payment stays needs_review).
UPDATE discount_redemptions SET status = 'confirmed' WHERE status = 'over_limit';
ALTER TABLE discount_redemptions DROP CONSTRAINT discount_redemptions_status_check;
ALTER TABLE discount_redemptions ADD CONSTRAINT discount_redemptions_status_check
    CHECK (status IN ('reserved', 'confirmed', 'released'));
