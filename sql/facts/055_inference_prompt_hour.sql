-- Facts of one month, step 055: prompt tokens by source (computed, cached, transferred, unsplit) per node,
-- engine, model and hour (issue 14). Month bounds: getvariable('month_start') and getvariable('month_end').
-- `split` is true when the engine exposed the split that hour (any computed, cached or transferred series,
-- even at 0 tokens); an engine that does not split has only unsplit_tokens and split = false: its prompt
-- tokens are labelled so, never guessed into computed and cached. A node with prompt tokens but no energy or
-- inference rows keeps its tokens (site NULL): tokens are never dropped for want of a site.

INSERT INTO fact_inference_prompt_hour BY NAME
SELECT p.hour_utc, ns.site, p.cluster, p.node, p.engine, p.model,
       coalesce(exact_sum(CASE WHEN p.prompt_source = 'computed' THEN p.tokens END), 0) AS computed_tokens,
       coalesce(exact_sum(CASE WHEN p.prompt_source = 'cached' THEN p.tokens END), 0) AS cached_tokens,
       coalesce(exact_sum(CASE WHEN p.prompt_source = 'transferred' THEN p.tokens END), 0) AS transferred_tokens,
       coalesce(exact_sum(CASE WHEN p.prompt_source = 'unsplit' THEN p.tokens END), 0) AS unsplit_tokens,
       bool_or(p.prompt_source IN ('computed', 'cached', 'transferred')) AS split
  FROM stg_inference_prompt_hourly p
  LEFT JOIN _node_site ns ON ns.node = p.node AND ns.site_label IS NOT DISTINCT FROM p.site_label
 WHERE p.hour_utc >= getvariable('month_start') AND p.hour_utc < getvariable('month_end')
 GROUP BY p.hour_utc, ns.site, p.cluster, p.node, p.engine, p.model;
