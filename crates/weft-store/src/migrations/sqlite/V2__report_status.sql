-- The outbox keeps the exact report status (weft-core `ReportStatus`, as the WIT spells
-- it) instead of a coarse state, so a status re-delivered after a restart is the one first
-- desired. Rows written by 0001 get the closest status.
UPDATE outbox SET desired = CASE desired
    WHEN 'pending' THEN 'Pending'
    WHEN 'running' THEN 'Running'
    WHEN 'success' THEN 'Succeeded'
    WHEN 'failure' THEN 'Failed'
    WHEN 'error' THEN 'Errored'
    WHEN 'canceled' THEN 'Cancelled'
    ELSE desired END;
UPDATE outbox SET delivered = CASE delivered
    WHEN 'pending' THEN 'Pending'
    WHEN 'running' THEN 'Running'
    WHEN 'success' THEN 'Succeeded'
    WHEN 'failure' THEN 'Failed'
    WHEN 'error' THEN 'Errored'
    WHEN 'canceled' THEN 'Cancelled'
    ELSE delivered END
WHERE delivered IS NOT NULL;
