-- When a refresh token was rotated: presenting it again within the provider's reuse interval
-- gets a fresh pair instead of revoking the grant. NULL for rows rotated before this column.
ALTER TABLE refresh_tokens ADD COLUMN rotated_at INTEGER;
