/*-------------------------------------------------------------------------
 *
 * usage_fdw.h
 *		  Shared declarations of usage_fdw, a foreign data wrapper that maps
 *		  vendor usage APIs (UiPath consumption, AvePoint Power Platform
 *		  connection usage) to foreign tables.
 *
 * The modules, in the order a query meets them:
 *
 *	module.c		_PG_init (settings, hooks) and the FDW handler
 *	option.c		option validation and the merged options of one scan
 *	catalog.c		the endpoint catalogue: every endpoint described as data
 *	declare.c		a foreign table's own declaration of its endpoint, turned
 *					into the same data
 *	columns.c		column to JSON key and parameter mapping
 *	pushdown.c		which WHERE clauses become request parameters, and their
 *					evaluation at execution time
 *	plan.c			the planner's callbacks: size, paths, plan, the one cost
 *					of a scan's requests, missing-parameter errors
 *	scan.c			the executor's callbacks, asynchronous execution under an
 *					Append, the scan side of the batched join
 *	fetch.c			the call engine (fetch.h): calls, the max_concurrency
 *					window, pages and nextLink, the parse into rows, totals
 *	request.c		URL, query string and JSON body of one request
 *	auth.c			bearer tokens: static, or OAuth2 client credentials (cached)
 *	jwt.c			certificate login: the signed JWT client assertion
 *	http.c			libcurl multi interface driven by the backend's latch
 *	json_tuple.c	PostgreSQL's JSON parser turning response items into rows
 *	explain.c		EXPLAIN output
 *	echo_check.c	tests of an echo column that PostgreSQL evaluates above
 *					its scan, where no request carries its parameter
 *	ddl.c			IMPORT FOREIGN SCHEMA and the DDL checks of the event trigger
 *	batchjoin.c		the batched key join (a CustomScan join path); batch.h is
 *					its protocol with the scan
 *	compat.h		the differences between PostgreSQL versions
 *
 * Words used throughout, one meaning each:
 *
 *	request			what a scan asks of an endpoint: all its calls
 *	call			one combination of parameter values of a scan (one element
 *					of its fan-out): the logical request, with all its pages
 *	page			one HTTP exchange of a call: the first URL, or a nextLink
 *	attempt			one try at a page: a page is retried (backoff, Retry-After,
 *					a 401 refresh) up to max_retries times
 *	batch			a set of outer rows of the batched join (never a page)
 *	fan-out			the calls of one scan, up to max_concurrency in flight
 *	binding			a server or table option that fixes a parameter
 *	echo column		a column that shows the value its call sent
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#ifndef USAGE_FDW_H
#define USAGE_FDW_H

#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "utils/relcache.h"

#include "compat.h"

/* ----------------------------------------------------------------
 *		Endpoint catalogue (catalog.c)
 * ----------------------------------------------------------------
 */

typedef enum UsageProvider
{
	USAGE_PROVIDER_UIPATH,
	USAGE_PROVIDER_AVEPOINT
} UsageProvider;

/* Where a request parameter goes. */
typedef enum UsageParamPlace
{
	USAGE_PLACE_PATH,			/* {name} in the path template */
	USAGE_PLACE_QUERY,			/* ?name=value */
	USAGE_PLACE_BODY			/* member of the JSON request body */
} UsageParamPlace;

/* How a parameter's value is written into the request. */
typedef enum UsageParamKind
{
	USAGE_KIND_STRING,			/* JSON string / query value */
	USAGE_KIND_NUMBER,			/* JSON number in a body, digits elsewhere */
	USAGE_KIND_BOOLEAN,			/* JSON true/false */
	USAGE_KIND_TIME,			/* a point in time, in the parameter's format */
	USAGE_KIND_STRING_LIST,		/* a JSON array holding the one value */
	USAGE_KIND_TIME_RANGE		/* the range clauses on a date or timestamp
								 * column, sent as a lower bound (api_name)
								 * and an upper bound (api_name_end), either
								 * of which may be NULL, in the parameter's
								 * format */
} UsageParamKind;

/* How a point in time is written (param_format). */
typedef enum UsageTimeFormat
{
	USAGE_TIME_ISO8601,			/* 2024-01-31T00:00:00Z */
	USAGE_TIME_DATE,			/* 2024-01-31 */
	USAGE_TIME_EPOCH_MS			/* unix milliseconds: digits, a JSON number
								 * in a body */
} UsageTimeFormat;

typedef enum UsagePaging
{
	USAGE_PAGING_NONE,			/* the whole array arrives in one body */
	USAGE_PAGING_NEXTLINK		/* page size parameter + a next-page link, a
								 * URI reference resolved against the page's
								 * URL */
} UsagePaging;

typedef struct UsageParamDef
{
	const char *key;			/* column key that binds it (of a declared
								 * endpoint: the column's name), or NULL */
	const char *api_name;		/* name in the request (TIME_RANGE: of the
								 * lower bound, or NULL) */
	const char *api_name_end;	/* TIME_RANGE only: name of the upper bound,
								 * or NULL */
	const char *option;			/* option supplying a default, or NULL */
	UsageParamPlace place;
	UsageParamKind kind;
	UsageTimeFormat format;		/* TIME, TIME_RANGE: how values are written */
	bool		whole_days;		/* TIME_RANGE: the API's rows are whole UTC
								 * days, so the range is one of days,
								 * whatever the column's type */
	bool		required;		/* the API refuses a request without it
								 * (TIME_RANGE: without a lower bound; an
								 * open upper bound is then sent as now) */
	bool		echo;			/* not in the response: the column echoes the
								 * value the request used */
	const char *absent_echo;	/* echo value when not sent, or NULL */
	double		narrows;		/* planner: rows fraction left when given */
	const char *not_after;		/* TIME: key of the parameter whose value
								 * this one's must not exceed (start before
								 * end), or NULL */
	bool		guid;			/* the vendor documents the value as a GUID:
								 * checked (usage_check_guid) before it is
								 * sent, so that a typo is an error and not
								 * an empty answer */
} UsageParamDef;

/* A column of the standard table, for IMPORT FOREIGN SCHEMA. */
typedef struct UsageColumnDef
{
	const char *name;
	const char *type;			/* schema-qualified, as pg_type spells it:
								 * IMPORT's commands are parsed with the
								 * importing user's search_path */
	const char *options;		/* column OPTIONS, e.g. "json_key '*'", or
								 * NULL */
	const char *comment;
} UsageColumnDef;

/*
 * An endpoint: a built-in entry of the catalogue (catalog.c), or a foreign
 * table's own declaration turned into the same data (declare.c).
 */
typedef struct UsageEndpoint
{
	const char *name;			/* table option "endpoint"; a declaration's
								 * path */
	UsageProvider provider;
	const char *method;			/* "GET" or "POST" */
	const char *path;			/* path template, {organizationId} etc. */
	const char *rows;			/* JSON pointer to the array of row objects;
								 * "" for the whole response as one row */
	UsagePaging paging;
	const char *next_link;		/* JSON pointer to the next page's link */
	const char *page_size_param;	/* query parameter of the page size, or
									 * NULL */
	const UsageParamDef *params;
	int			nparams;
	const UsageColumnDef *columns;
	int			ncolumns;
	double		rows_per_request;	/* planner: rows of one request with no
									 * narrowing parameter */
	const char *comment;		/* table comment */
	const char *example_where;	/* a WHERE clause that satisfies the
								 * required parameters, for HINTs */
	bool		declared;		/* from a foreign table's own options */
} UsageEndpoint;

extern const UsageEndpoint *usage_find_endpoint(const char *name);
extern const UsageEndpoint *usage_endpoint_at(int i);
extern int	usage_endpoint_count(void);
extern const char *usage_provider_name(UsageProvider provider);
extern bool usage_provider_from_name(const char *name, UsageProvider *provider);
extern char *usage_endpoint_names(UsageProvider provider, bool all);
extern int	usage_find_param_by_key(const UsageEndpoint *ep, const char *key);
extern int	usage_find_param_by_option(const UsageEndpoint *ep, const char *option);
extern const UsageParamDef *usage_find_binding(const char *option,
											   UsageProvider *provider);
extern bool usage_option_provider(const char *option, UsageProvider *provider);
extern List *usage_binding_options(void);
extern bool usage_option_is_guid(const char *option);
extern bool usage_endpoint_knows_key(const UsageEndpoint *ep, const char *key);
extern char *usage_endpoint_keys(const UsageEndpoint *ep);
extern const UsageParamDef *usage_provider_param(UsageProvider provider,
												 const char *api_name);

/* declared endpoints (declare.c) */
extern bool usage_table_is_declared(List *table_options);
extern const UsageEndpoint *usage_declared_endpoint(Oid relid,
													UsageProvider provider,
													List *table_options);
extern void usage_check_builtin_columns(Oid relid, const char *table_name);
extern void usage_check_declaration_option(DefElem *d);
extern void usage_check_declaration_column_option(DefElem *d);
extern bool usage_json_pointer_valid(const char *pointer);
extern char **usage_json_pointer_split(const char *pointer, int *ntokens);

/* ----------------------------------------------------------------
 *		Options (option.c)
 * ----------------------------------------------------------------
 */

typedef struct UsageOptions
{
	/* from the server, some overridable by the table */
	char	   *server_name;
	UsageProvider provider;
	char	   *base_url;
	char	   *organization_id;
	char	   *token_url;
	char	   *scope;
	int			page_size;
	int			max_concurrency;
	bool		async_capable;	/* scans may run asynchronously under an
								 * Append (concurrent partitions) */
	int			max_pages;		/* pages of one call (nextLink paging) */
	int			timeout_ms;
	int			connect_timeout_ms;
	int			max_retries;
	int			batch_size;		/* outer rows per batch of a batched join */
	char	   *ca_file;
	char	   *proxy;

	/* from the table */
	char	   *table_name;		/* qualified, quoted */
	const UsageEndpoint *endpoint;
	List	   *param_defaults; /* DefElems: parameter defaults, table over
								 * server */

	/* from the user mapping (only when asked for) */
	Oid			umid;
	char	   *access_token;
	char	   *client_id;
	char	   *client_secret;
	char	   *client_certificate; /* PEM */
	char	   *client_key;		/* PEM */
	char	   *client_key_passphrase;
} UsageOptions;

extern UsageOptions *usage_get_options(Oid foreigntableid);
extern void usage_get_user_options(UsageOptions *opts, Oid serverid, Oid userid);
extern const char *usage_param_default(UsageOptions *opts, const UsageParamDef *param);
extern char *usage_column_json_key(Oid relid, AttrNumber attnum, bool *explicit_key);
extern char *usage_camel_case(const char *name);
extern bool usage_is_guid(const char *value);
extern void usage_check_guid(const char *value, const char *what);
extern void usage_option_init(void);
extern void usage_check_server_destinations(List *options, UsageProvider provider);

/* ----------------------------------------------------------------
 *		Column mapping (columns.c)
 * ----------------------------------------------------------------
 */

typedef enum UsageColumnKind
{
	USAGE_COL_DROPPED,
	USAGE_COL_RESPONSE,			/* read from the response item */
	USAGE_COL_ECHO,				/* echo of a request parameter */
	USAGE_COL_WHOLE_ITEM		/* json_key '*': the whole item */
} UsageColumnKind;

typedef struct UsageColumn
{
	UsageColumnKind kind;
	char	   *name;
	char	   *key;			/* json key (camelCase or explicit) */
	char	   *alt_key;		/* the exact column name, or NULL */
	int			param;			/* index in endpoint->params, or -1 */
	bool		unread;			/* the query reads no value of it: a response
								 * column is then NULL, not converted */
	Oid			typid;
	int32		typmod;
	Oid			typinput;
	Oid			typioparam;
	FmgrInfo	inflinfo;
} UsageColumn;


/* ----------------------------------------------------------------
 *		Pushdown (pushdown.c)
 * ----------------------------------------------------------------
 */

typedef enum UsageCondOp
{
	USAGE_OP_EQ,				/* param = value */
	USAGE_OP_ANY,				/* param = ANY(array): fan-out */
	USAGE_OP_GE,
	USAGE_OP_GT,
	USAGE_OP_LE,
	USAGE_OP_LT
} UsageCondOp;

/*
 * One pushed-down condition.  The value expression lives in the plan's
 * fdw_exprs (at index expr_index) so that it is evaluated at execution time
 * and nestloop parameters are substituted in it.
 */
typedef struct UsageCond
{
	int			param;			/* index in endpoint->params */
	UsageCondOp op;
	int			expr_index;
	Oid			coltype;		/* type of the column compared with */
} UsageCond;

/*
 * The planner's private list of a scan (ForeignScan.fdw_private), slot by
 * slot, as postgres_fdw's FdwScanPrivateIndex.  Plans are copied and may be
 * read back from their text form, hence plain lists of Integer nodes.
 */
typedef enum UsageScanPrivateIndex
{
	USAGE_PRIVATE_CONDS,		/* the pushed-down conditions: a list per
								 * condition, fields by UsageCondField */
	USAGE_PRIVATE_BATCH_KEYS,	/* the keys a batched join supplies: a list
								 * per key, fields by UsageBatchKeyField; NIL
								 * for a scan outside a batched join */
	USAGE_PRIVATE_UNSENT_ECHO,	/* the attribute numbers (Integers) of the
								 * echo columns that no request carries:
								 * they read NULL, and no test above the
								 * scan may read them (echo_check.c) */
	USAGE_PRIVATE_UNREAD,		/* the attribute numbers (Integers) of the
								 * columns the query reads no value of (not
								 * in the rel's target list nor in its
								 * clauses): not converted, NULL */
	USAGE_PRIVATE_NSLOTS
} UsageScanPrivateIndex;

/* The fields of a condition in fdw_private, each an Integer. */
typedef enum UsageCondField
{
	USAGE_COND_PARAM,			/* UsageCond.param */
	USAGE_COND_OP,				/* UsageCond.op */
	USAGE_COND_EXPR_INDEX,		/* UsageCond.expr_index */
	USAGE_COND_COLTYPE,			/* UsageCond.coltype */
	USAGE_COND_NFIELDS
} UsageCondField;

/* The fields of a batch key in fdw_private, each an Integer. */
typedef enum UsageBatchKeyField
{
	USAGE_KEY_PARAM,			/* index in endpoint->params */
	USAGE_KEY_COLTYPE,			/* type of the parameter's column */
	USAGE_KEY_VALTYPE,			/* type of the outer value */
	USAGE_KEY_NFIELDS
} UsageBatchKeyField;

extern List *usage_int_fields_to_list(const int *fields, int nfields);
extern int	usage_int_field(List *fields, int field);

/* Result of classifying a relation's clauses. */
typedef struct UsagePushdown
{
	List	   *conds;			/* UsageCond * */
	List	   *exprs;			/* value expressions */
	double		fanout;			/* estimated number of requests */
} UsagePushdown;

extern bool usage_is_datetime_type(Oid typid);
extern void usage_classify_clause(PlannerInfo *root, RelOptInfo *baserel,
								  const UsageEndpoint *ep, UsageColumn *cols,
								  RestrictInfo *rinfo, Relids outer_relids,
								  UsagePushdown *pd);
extern bool usage_param_supplied(const UsageEndpoint *ep, UsageOptions *opts,
								 List *conds, int param);
extern List *usage_conds_to_list(List *conds);
extern bool usage_const_range(const UsageParamDef *def, List *conds,
							  List *exprs, int param, char **from_text,
							  char **to_text, bool *empty);
extern char *usage_format_time(int64 usecs, UsageTimeFormat format);
extern char *usage_time_value_text(const UsageParamDef *def, Datum d,
								   Oid typid, Oid coltype,
								   const char *colname, int64 *ms);
extern bool usage_time_sendable(const UsageParamDef *def, Datum d, Oid typid);
extern int64 usage_datum_to_epoch_ms(Datum d, Oid typid, const char *colname);
extern Datum usage_coerce_point_in_time(Datum d, Oid from, Oid to);
extern int	usage_distinct_elements(Datum array, Oid *elemtype, Datum **elems,
									char ***texts);
extern List *usage_conds_from_list(List *list);

/* One value of a request parameter, as evaluated at execution time. */
typedef struct UsageValue
{
	char	   *text;			/* STRING kinds: the value as text */
	int64		num;			/* EPOCH_MS: unix milliseconds */
	bool		boolval;		/* BOOLEAN */
	Datum		echo;			/* value for the echo column */
	bool		echo_isnull;
} UsageValue;

/* The values a parameter takes over the requests of one scan. */
typedef struct UsageValueSet
{
	bool		sent;			/* false: the request does not carry it */
	int			nvalues;
	UsageValue *values;
	/*
	 * TIME_RANGE only: the bounds the range clauses give, inclusive, in days
	 * since 1970-01-01 on a date column, else in microseconds since
	 * 1970-01-01 (UTC); and what is sent for them (NULL: not sent).
	 */
	bool		has_low;
	bool		has_high;
	int64		low;
	int64		high;
	char	   *from_text;
	char	   *to_text;
} UsageValueSet;

extern UsageValueSet *usage_evaluate_params(const UsageEndpoint *ep,
											UsageOptions *opts,
											UsageColumn *cols,
											const int *param_col,
											List *conds, List *expr_states,
											ExprContext *econtext,
											bool *empty);

/* ----------------------------------------------------------------
 *		Request building (request.c)
 * ----------------------------------------------------------------
 */

/*
 * What the renderer of a request writes for one parameter, as a value
 * source gives it: the executor the values of one request, EXPLAIN the
 * values known at plan time or placeholders.
 */
typedef struct UsageRenderValue
{
	const char *text;			/* NULL: the request does not carry it */
	const char *end_text;		/* DATE_RANGE: the upper bound */
	bool		verbatim;		/* write text as it is (a placeholder, a
								 * formatted number), not encoded for its
								 * place */
} UsageRenderValue;

typedef void (*usage_value_source) (void *arg, int param,
									UsageRenderValue *value);

extern void usage_render_request(const UsageEndpoint *ep, UsageOptions *opts,
								 usage_value_source source, void *arg,
								 StringInfo line, StringInfo body);
extern void usage_build_request(UsageOptions *opts, const UsageValueSet *sets,
								const int *choice, char **url, char **body);
extern void usage_append_url_encoded(StringInfo buf, const char *s);
extern bool usage_same_origin(const char *url_a, const char *url_b);
extern char *usage_url_origin(const char *url);
extern char *usage_next_page_url(UsageOptions *opts, const char *page_url,
								 const char *next_link, int64 npages,
								 struct HTAB **followed, MemoryContext cxt);
extern char *usage_next_page_guess(UsageOptions *opts, const char *page_url,
								   const char *next_link, int64 npages,
								   struct HTAB *followed);

/* ----------------------------------------------------------------
 *		HTTP (http.c)
 * ----------------------------------------------------------------
 */

typedef struct UsageHttpStats
{
	int64		requests;		/* attempts sent, retries included */
	int64		retries;
	int64		bytes;			/* response bytes received */
	double		wait_ms;		/* time spent waiting on the network */
	uint64		charged_wait;	/* http.c: the last wait charged to wait_ms */
} UsageHttpStats;

/*
 * How a finished transfer ended: the one classification of failures, which
 * decides retries, the SQLSTATE of the error, and what the token request
 * counts as a refusal.
 */
typedef enum UsageFailure
{
	USAGE_FAIL_NONE,			/* HTTP 200 */
	USAGE_FAIL_TOO_LARGE,		/* body over USAGE_MAX_RESPONSE_BYTES */
	USAGE_FAIL_CONNECTION,		/* no usable connection (HV00N) */
	USAGE_FAIL_TLS,				/* certificate not verified (HV00N) */
	USAGE_FAIL_TRANSPORT,		/* another libcurl error */
	USAGE_FAIL_AUTH,			/* HTTP 401 or 403 (28000) */
	USAGE_FAIL_SERVER,			/* HTTP 429 or 5xx */
	USAGE_FAIL_CLIENT			/* any other status */
} UsageFailure;

typedef struct UsageTransfer UsageTransfer;

/*
 * Where a request's bearer token comes from.  token() returns the current
 * token (obtaining one if need be); after a 401, refresh() discards it and
 * tells whether another can be had.  http.c sends a request once more with
 * a new token after a 401, once per request, when refresh() says so.
 */
typedef struct UsageBearerSource
{
	const char *(*token) (void *arg);
	bool		(*refresh) (void *arg);
	void	   *arg;
} UsageBearerSource;

typedef struct UsageHttpRequest
{
	const char *method;
	const char *url;
	const char *body;			/* NULL for none */
	const char *content_type;	/* of the body */
	const UsageBearerSource *bearer;	/* NULL: no Authorization header */
	UsageOptions *opts;			/* timeouts, retries, TLS, proxy */
} UsageHttpRequest;

/*
 * A transfer belongs to the owner slot given to usage_http_start: the slot
 * points to it until usage_http_release(slot), or transaction end, frees it
 * and sets the slot to NULL.  A slot must stay valid as long as it holds a
 * transfer: release it before freeing the slot's memory.
 */
extern void usage_http_start(const UsageHttpRequest *req,
							 UsageHttpStats *stats, UsageTransfer **owner);
extern void usage_http_wait(UsageTransfer *xfer);
extern void usage_http_poll(void);
extern bool usage_http_is_done(UsageTransfer *xfer);
extern UsageFailure usage_http_failure(UsageTransfer *xfer);
extern long usage_http_status(UsageTransfer *xfer);
extern const char *usage_http_body(UsageTransfer *xfer, size_t *len);
extern const char *usage_http_content_type(UsageTransfer *xfer);
extern bool usage_http_readable(UsageTransfer *xfer, size_t min_bytes);
extern void usage_http_wait_readable(UsageTransfer *xfer, size_t min_bytes);
extern void usage_http_take(UsageTransfer *xfer, size_t max_bytes,
							const char **data, size_t *len, bool *final);
USAGE_NORETURN extern void usage_http_report_failure(UsageTransfer *xfer,
													 const char *what);
extern void usage_http_release(UsageTransfer **owner);
extern void usage_http_move(UsageTransfer **from, UsageTransfer **to);
extern bool usage_http_unread_end(UsageTransfer *xfer, const char **data,
								  size_t *len);
extern void usage_http_init(void);
extern char *usage_api_text(const char *s, size_t len, size_t max_bytes);
extern void usage_http_note_secret(const char *secret);
extern char *usage_redact_secrets(const char *s, size_t len, size_t *outlen);

/* ----------------------------------------------------------------
 *		Authentication (auth.c)
 * ----------------------------------------------------------------
 */

extern const UsageBearerSource *usage_auth_bearer(UsageOptions *opts,
												  UsageHttpStats *stats);

/* certificate login (jwt.c) */
extern void usage_check_client_certificate(const char *cert_pem,
										   const char *key_pem,
										   const char *passphrase);
extern char *usage_client_assertion(const char *cert_pem, const char *key_pem,
									const char *passphrase,
									const char *client_id,
									const char *audience);

/* ----------------------------------------------------------------
 *		JSON to rows (json_tuple.c, json_get.c)
 * ----------------------------------------------------------------
 */

typedef struct UsageParseResult
{
	char	   *next_link;		/* NULL when absent, null or empty */
	bool		has_total;
	int64		total_count;
	int64		nitems;
} UsageParseResult;

/* a body's rows, read as its bytes arrive */
typedef struct UsageRowParser UsageRowParser;

typedef enum UsageParseStep
{
	USAGE_PARSE_ROW,			/* a row is complete */
	USAGE_PARSE_MORE,			/* the bytes so far hold no further row */
	USAGE_PARSE_DONE			/* the body is done */
} UsageParseStep;

extern UsageRowParser *usage_row_parser_create(const UsageEndpoint *ep,
											   UsageColumn *cols, int natts);
extern void usage_row_parser_feed(UsageRowParser *p, const char *data,
								  size_t len, bool final);
extern UsageParseStep usage_row_parser_next(UsageRowParser *p, char ***values);
extern const UsageParseResult *usage_row_parser_result(UsageRowParser *p);
extern char *usage_json_link_at_end(const UsageEndpoint *ep, const char *data,
									size_t len);

/* json_get.c */
extern char *usage_json_get_string(const char *body, size_t len,
								   const char *key, bool *found);

/* ----------------------------------------------------------------
 *		EXPLAIN (explain.c), echo tests (echo_check.c), DDL (ddl.c)
 * ----------------------------------------------------------------
 */

extern char *usage_describe_request(const UsageEndpoint *ep, UsageOptions *opts,
									UsageColumn *cols, const int *param_col,
									List *conds, List *exprs, int *fanout,
									char **body_out, char **legend_out);
extern void usage_check_echo_tests(PlannedStmt *stmt, Index scanrelid,
								   Bitmapset *unsent, Oid relid,
								   const char *table_name);
extern List *usage_import_foreign_schema(ImportForeignSchemaStmt *stmt,
										 Oid serverOid);
extern Datum usage_fdw_handler(PG_FUNCTION_ARGS);	/* module.c */

/* ----------------------------------------------------------------
 *		Columns (columns.c), the planner (plan.c), the executor (scan.c)
 * ----------------------------------------------------------------
 */

extern UsageColumn *usage_map_columns(Relation rel, const UsageEndpoint *ep,
									  bool for_execution, int **param_col);
extern void usage_plan_routine(struct FdwRoutine *routine);
extern void usage_scan_routine(struct FdwRoutine *routine);
extern void usage_cost_calls(double calls, double call_rows, double pages,
							 int max_concurrency, Cost *startup, Cost *total);

/* limits */
#define USAGE_MAX_REQUESTS_PER_SCAN 10000
#define USAGE_MAX_RESPONSE_BYTES	(64 * 1024 * 1024)
#define USAGE_STREAM_BUFFER_BYTES	(256 * 1024)	/* a 200 body waits paused
														 * when this much is
														 * ahead of its reader */
#define USAGE_MAX_PAGES_PER_CALL	1000000	/* largest max_pages */

#endif							/* USAGE_FDW_H */
