-- One engine and model of one fitting run: migrations/005_inference_token_fit.sql names the columns.
INSERT INTO inference_token_fit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
