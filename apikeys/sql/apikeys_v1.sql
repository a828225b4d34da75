-- API keys' SQL, installed after every migrate (billing/ledger/sql_install.py);
-- every statement can run again.

-- The key actions are a key's history: append-only, so UPDATE, DELETE and
-- TRUNCATE are refused. Only a session that says so may TRUNCATE them (the
-- tests empty the database between tests that commit with TRUNCATE); nothing
-- in the product sets agipower.allow_truncate.
CREATE OR REPLACE FUNCTION apikeys_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('agipower.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'AP009',
              HINT = 'a key''s history is only ever added to';
END $$;

CREATE OR REPLACE TRIGGER apikeys_keyaction_append_only
    BEFORE UPDATE OR DELETE ON apikeys_keyaction
    FOR EACH ROW EXECUTE FUNCTION apikeys_refuse_change();

CREATE OR REPLACE TRIGGER apikeys_keyaction_no_truncate
    BEFORE TRUNCATE ON apikeys_keyaction
    FOR EACH STATEMENT EXECUTE FUNCTION apikeys_refuse_change();
