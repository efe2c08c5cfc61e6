-- How many device-hour facts the month [$month_start, $month_end) has: none, nothing to report.
SELECT count(*) FROM fact_device_hour WHERE hour_utc >= $month_start AND hour_utc < $month_end
