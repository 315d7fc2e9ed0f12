-- Discount trust (README "Discount codes"): a redemption confirmed beyond its code's limits is
-- kept as 'over_limit' (the payer paid and is credited; staff review it), and a user holds at
-- most one open reservation per code, so one customer cannot hoard a code's slots.

ALTER TABLE discount_redemptions DROP CONSTRAINT discount_redemptions_status_check;
ALTER TABLE discount_redemptions ADD CONSTRAINT discount_redemptions_status_check
    CHECK (status IN ('reserved', 'confirmed', 'released', 'over_limit'));

-- Rows from before this rule: keep each user's newest open reservation per code, release the
-- rest (their payments stay payable; a late payment is re-checked against the limits).
UPDATE discount_redemptions r SET status = 'released', updated_at = now()
WHERE r.status = 'reserved'
  AND EXISTS (SELECT 1 FROM discount_redemptions n
              WHERE n.discount_id = r.discount_id AND n.user_id = r.user_id
                AND n.status = 'reserved' AND n.id > r.id);

-- The race-free form of "one open reservation per user and code": concurrent purchases cannot
-- both hold one, whatever the application does.
CREATE UNIQUE INDEX discount_redemptions_one_open_per_user
    ON discount_redemptions (discount_id, user_id) WHERE status = 'reserved';
