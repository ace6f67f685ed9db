// Package tariffcsv imports and exports tariff decks (rates per destination
// prefix) as CSV files, the format carriers and spreadsheets exchange them
// in. Parse validates a whole file and reports every bad row at once so a
// user can fix the file in one go; Write produces the canonical form that
// Parse reads back unchanged.
//
// Money is carried as int64 micro-units (1 currency unit = 1,000,000
// micros) and parsed by hand: floats would round tariffs like 0.0125.
//
// # File format
//
// The first non-blank line is a header naming the columns, matched
// case-insensitively after trimming spaces; columns may come in any order:
//
//	prefix             required  destination prefix, 1..15 digits; a leading '+' is stripped
//	destination        required  route name, e.g. "Spain - Mobile"; 1..100 characters
//	rate_per_minute    required  price per minute in currency units, e.g. 0.0125 (0..1000)
//	connection_fee     optional  price per answered call, default 0 (0..1000)
//	min_seconds        optional  minimum billed seconds, default 0 (0..3600)
//	increment_seconds  optional  billing increment in seconds, default 1 (1..3600)
//	billing            optional  "min/increment" in one column, e.g. 60/60, 30/6, 1/1;
//	                             cannot be combined with min_seconds or increment_seconds
//	effective_from     optional  when the rate starts; empty means always. Accepted:
//	                             2026-01-01T00:00:00Z or with an offset (RFC 3339),
//	                             2026-01-01 00:00:00 (UTC) and 2026-01-01 (UTC midnight)
//
// Unknown, empty or repeated column names are errors rather than being
// ignored, since a typo such as "conection_fee" would otherwise silently
// drop data. Header errors stop parsing before any row is read.
//
// Fields are separated by commas, or by semicolons when the header line
// contains ';' and no ',' (what Excel writes in European locales), and are
// quoted per RFC 4180 (a destination containing the delimiter must be
// quoted). A UTF-8 byte order mark is ignored, line endings may be LF or
// CRLF, every field is trimmed of surrounding spaces, and blank lines (or
// lines of empty fields, which spreadsheets leave behind) are skipped.
// An empty cell in an optional column takes the column's default.
//
// Amounts use '.' as the decimal separator and at most 6 decimals (zeros
// beyond the sixth, which spreadsheets pad with, are tolerated: they lose
// nothing). Signs, exponents and thousands separators are refused, and so
// is ',' as a decimal separator even in semicolon files, because "1,000"
// cannot be told apart from one thousand.
//
// The same prefix may appear several times only with different
// effective_from values. Error lines are 1-based physical lines of the
// file, the header being line 1 in a file that starts with it.
//
// Example:
//
//	prefix,destination,rate_per_minute,connection_fee,billing,effective_from
//	+34,Spain - Fixed,0.0045,0,60/1,
//	346,Spain - Mobile,0.0125,0,60/1,2026-01-01
//	"1","United States, Canada",0.004,,1/1,
//
// Write emits the columns prefix, destination, rate_per_minute,
// connection_fee, min_seconds, increment_seconds, effective_from in that
// order, with effective_from empty for "always" and otherwise in RFC 3339
// UTC.
package tariffcsv
