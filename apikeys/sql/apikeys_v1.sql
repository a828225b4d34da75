-- API keys' SQL, installed after every migrate (billing/ledger/sql_install.py);
-- every statement can run again.

-- The key actions are a key's history: append-only, so UPDATE, DELETE and
-- TRUNCATE are refused. Only a session that says so may TRUNCATE them (the
-- tests empty the database between tests that commit with TRUNCATE); nothing
-- in the product sets agipower.allow_truncate. The ledger's refusal serves
-- (billing_refuse_change), with this history's own hint.
CREATE OR REPLACE TRIGGER apikeys_keyaction_append_only
    BEFORE UPDATE OR DELETE ON apikeys_keyaction
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change(
        'a key''s history is only ever added to');

CREATE OR REPLACE TRIGGER apikeys_keyaction_no_truncate
    BEFORE TRUNCATE ON apikeys_keyaction
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change(
        'a key''s history is only ever added to');
