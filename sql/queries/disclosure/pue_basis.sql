-- Facility energy of the selected rows by the basis of its PUE (meter_hour | meter_period | default).
SELECT pue_source, sum(facility_kwh) FROM _disclosure_rows WHERE pue_source IS NOT NULL
 GROUP BY pue_source ORDER BY pue_source;
