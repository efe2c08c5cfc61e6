-- The month's facts and rollups are rebuilt from staging at the end of the run (store.rebuild_dirty).
INSERT OR IGNORE INTO dirty_month VALUES ($month);
