DROP TABLE discount_redemptions;
DROP TABLE discount_codes;
DROP TABLE payments;
