-- Energy of the selected rows per site and zone (NULL site: nodes mapped to no site).
SELECT site, zone, sum(it_kwh), sum(facility_kwh), count(*)
  FROM _disclosure_rows GROUP BY site, zone ORDER BY site NULLS LAST, zone;
