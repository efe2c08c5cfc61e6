-- Disclosure of a served model: its prompt tokens by source (issue 14) over the same selection as
-- select_inference.sql (label globs $model, $engine, $cluster, $node, $site, NULL = any; [$start, $end)).
-- computed ran through a forward pass, cached came from the prefix cache, transferred arrived as KV from
-- elsewhere; unsplit are the prompt tokens of engines that do not split them. Node-hours say how much of
-- the selection was split.
SELECT coalesce(sum(computed_tokens), 0), coalesce(sum(cached_tokens), 0), coalesce(sum(transferred_tokens), 0),
       coalesce(sum(unsplit_tokens), 0), count(*) FILTER (WHERE split), count(*) FILTER (WHERE NOT split)
  FROM fact_inference_prompt_hour
 WHERE hour_utc >= $start AND hour_utc < $end
   AND ($model IS NULL OR model GLOB $model)
   AND ($engine IS NULL OR engine GLOB $engine)
   AND ($cluster IS NULL OR cluster GLOB $cluster)
   AND ($node IS NULL OR node GLOB $node)
   AND ($site IS NULL OR site GLOB $site);
