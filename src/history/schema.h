// The history's schema, shared by both backends so they hold the same rows.
#pragma once

namespace dfd::history {

// Bumped when the scans table changes; a database with a newer version is
// refused rather than misread.
constexpr int kSchemaVersion = 1;

// The filter of list(): the same placeholders in both backends
// (1 verdict or '', 2 since_ms or 0, 3 until_ms or 0).
constexpr const char* kSqliteFilter =
    " WHERE (?1 = '' OR verdict = ?1) AND (?2 = 0 OR time_ms >= ?2) AND (?3 = 0 OR time_ms <= ?3)";
constexpr const char* kPostgresFilter =
    " WHERE ($1::text = '' OR verdict = $1::text) AND ($2::bigint = 0 OR time_ms >= $2::bigint)"
    " AND ($3::bigint = 0 OR time_ms <= $3::bigint)";

constexpr const char* kColumns =
    "id, time_ms, source, media_sha256, model, model_key, verdict, probability, report_json";

}  // namespace dfd::history
