-- A starting price list for model_pricing, as published by the providers around 2025-06-01.
--
-- EXAMPLES TO VERIFY, not a source of truth: check every line against your provider's current
-- price page and your invoices (batch, cached-input and long-context prices differ and are not
-- here) before relying on derived costs. Prices are USD per 1,000 tokens.
--
-- effective_date is 2024-01-01 so that older events are priced too; a later change is a NEW
-- row with a later effective_date (rollupd uses the latest effective_date not after an event's
-- time). Editing or backdating a row does not change costs rollupd has already derived; run
-- `rollupd rebuild --all` to re-price (README, "Costs from model_pricing").
--
-- Load it deliberately: psql "$DATABASE_URL" -f model_pricing_2025-06-01.sql
-- Rows already present (same provider, model, effective_date) are left as they are.

INSERT INTO model_pricing (provider, model, input_price_per_1k, output_price_per_1k, effective_date) VALUES
    ('openai',    'gpt-4o',                     0.002500, 0.010000, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-4o-mini',                0.000150, 0.000600, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-4.1',                    0.002000, 0.008000, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-4.1-mini',               0.000400, 0.001600, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-4.1-nano',               0.000100, 0.000400, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-4-turbo',                0.010000, 0.030000, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-4-turbo-preview',        0.010000, 0.030000, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-4',                      0.030000, 0.060000, '2024-01-01T00:00:00Z'),
    ('openai',    'gpt-3.5-turbo',              0.000500, 0.001500, '2024-01-01T00:00:00Z'),
    ('openai',    'o3-mini',                    0.001100, 0.004400, '2024-01-01T00:00:00Z'),
    ('openai',    'text-embedding-3-small',     0.000020, 0.000000, '2024-01-01T00:00:00Z'),
    ('openai',    'text-embedding-3-large',     0.000130, 0.000000, '2024-01-01T00:00:00Z'),
    ('anthropic', 'claude-opus-4-20250514',     0.015000, 0.075000, '2024-01-01T00:00:00Z'),
    ('anthropic', 'claude-sonnet-4-20250514',   0.003000, 0.015000, '2024-01-01T00:00:00Z'),
    ('anthropic', 'claude-3-7-sonnet-20250219', 0.003000, 0.015000, '2024-01-01T00:00:00Z'),
    ('anthropic', 'claude-3-5-sonnet-20241022', 0.003000, 0.015000, '2024-01-01T00:00:00Z'),
    ('anthropic', 'claude-3-5-haiku-20241022',  0.000800, 0.004000, '2024-01-01T00:00:00Z'),
    ('anthropic', 'claude-3-opus-20240229',     0.015000, 0.075000, '2024-01-01T00:00:00Z'),
    ('anthropic', 'claude-3-haiku-20240307',    0.000250, 0.001250, '2024-01-01T00:00:00Z'),
    ('google',    'gemini-1.5-pro',             0.001250, 0.005000, '2024-01-01T00:00:00Z'),
    ('google',    'gemini-1.5-flash',           0.000075, 0.000300, '2024-01-01T00:00:00Z'),
    ('google',    'gemini-2.0-flash',           0.000100, 0.000400, '2024-01-01T00:00:00Z')
ON CONFLICT (provider, model, effective_date) DO NOTHING;
