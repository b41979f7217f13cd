/*-------------------------------------------------------------------------
 *
 * usage_fdw.c
 *		  The FDW handler of usage_fdw: planning and execution of scans of
 *		  vendor usage endpoints.
 *
 * Planning: clauses on parameter columns become request parameters
 * (pushdown.c); paths are offered only when every parameter the endpoint
 * requires is supplied, by a WHERE clause, an option default or, for a
 * parameterized path, a join clause.  The cost model charges per request
 * and per row.
 *
 * Execution: the values are evaluated when the scan starts; the requests
 * (the cartesian product of the values) run up to max_concurrency at a time
 * in a window ahead of the one being read; for a paged endpoint the next
 * page is requested as soon as the current one is parsed, so at most one
 * page is fetched ahead of what the executor consumes.  Rows come out in
 * request order, page order, item order.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <unistd.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "compat.h"
#include "executor/execAsync.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "usage_fdw.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(usage_fdw_handler);

/* cost model: one HTTP request costs like a remote query in postgres_fdw */
#define USAGE_REQUEST_COST	100.0
/* parsing and converting one JSON item */
#define USAGE_ROW_COST		(cpu_tuple_cost * 10)
/* guess for "col = ANY($1)" when the array is not known at plan time */
#define USAGE_UNKNOWN_FANOUT 10

/* planner state, in baserel->fdw_private */
typedef struct UsagePlanInfo
{
	UsageOptions *opts;
	UsageColumn *cols;
	int			natts;
	int		   *param_col;		/* per parameter: its column, or -1 */
	UsagePushdown base;			/* from baserestrictinfo */
	Selectivity local_sel;		/* of the clauses not pushed down */
	Bitmapset  *tested;			/* parameters whose echo column a clause
								 * tests: every request must carry them */
	Bitmapset  *join_params;	/* parameters a join clause could supply */
} UsagePlanInfo;

/* one logical request: a combination of parameter values, and its pages */
typedef struct UsageCall
{
	UsageValueSet *sets;		/* the values it chooses from */
	int		   *choice;			/* per parameter: index into its values */
	int			tuple;			/* batched join: its key tuple, else -1 */
	Datum	   *echo;			/* per attribute: echo value */
	bool	   *echo_null;
	char	   *url;			/* of the page requested last */
	char	   *body;
	UsageTransfer *xfer;		/* owner slot: page in flight or done, not
								 * yet parsed (the calls array does not move
								 * once a call has started) */
	bool		total_counted;	/* its totalCount was added to the scan's */
	int64		npages;			/* pages parsed */
	HTAB	   *followed;		/* URLs of its pages read so far, from the
								 * second page on (usage_next_page_url) */
} UsageCall;

/*
 * Where the scan is in a response, for the error context of the errors
 * raised while a page is parsed and its values converted.
 */
typedef struct UsageConvLocation
{
	const char *url;			/* the page being parsed, or NULL */
	int			col;			/* the column being converted, or -1 */
	const char *value;			/* its text in the response */
} UsageConvLocation;

typedef struct UsageScanState
{
	Relation	rel;
	TupleDesc	tupdesc;
	UsageOptions *opts;
	const UsageEndpoint *ep;
	UsageColumn *cols;
	int			natts;
	int		   *param_col;		/* per parameter: its column, or -1 */
	List	   *conds;
	List	   *expr_states;
	UsageBatchKeys *batch;		/* keys from a batched join, or NULL */
	char	   *what;			/* for error context */
	const UsageBearerSource *bearer;	/* of the requests */

	MemoryContext scan_cxt;		/* per (re)scan: values, calls */
	MemoryContext batch_cxt;	/* rows of the page being returned */
	MemoryContextCallback cleanup;

	/* per (re)scan */
	bool		started;
	UsageValueSet *sets;
	int			ncalls;
	int			maxcalls;
	UsageCall  *calls;
	int			cur_call;		/* call whose rows are being returned */
	int			next_start;		/* first call not yet started */
	UsageCall  *filling;		/* call whose page is being parsed */
	HeapTuple  *rows;
	int			nrows;
	int			maxrows;
	int			next_row;
	Datum	   *dvalues;
	bool	   *dnulls;
	UsageConvLocation conv;		/* for the error context */

	/* asynchronous execution: a pipe whose read end is always readable */
	int			ready_pipe[2];

	/* totals over all (re)scans, for EXPLAIN ANALYZE */
	UsageHttpStats stats;
	int64		pages;
	int64		rows_returned;
	bool		has_total;
	int64		total_count;
} UsageScanState;

static void usageGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
static void usageGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
static ForeignScan *usageGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										Oid foreigntableid, ForeignPath *best_path,
										List *tlist, List *scan_clauses,
										Plan *outer_plan);
static void usageBeginForeignScan(ForeignScanState *node, int eflags);
static TupleTableSlot *usageIterateForeignScan(ForeignScanState *node);
static void usageReScanForeignScan(ForeignScanState *node);
static void usageEndForeignScan(ForeignScanState *node);
static void usageExplainForeignScan(ForeignScanState *node, ExplainState *es);
static List *usageImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);
static bool usageIsForeignPathAsyncCapable(ForeignPath *path);
static void usageForeignAsyncRequest(AsyncRequest *areq);
static void usageForeignAsyncConfigureWait(AsyncRequest *areq);
static void usageForeignAsyncNotify(AsyncRequest *areq);
static UsageBatchKeys *batch_keys_from_list(List *list);
static List *batch_key_conds(UsageBatchKeys *batch, int expr_base, UsageCondOp op);
static void begin_batch_requests(UsageScanState *st, ExprContext *econtext);

void		_PG_init(void);

/* Module load: the HTTP layer, the batched join's planner hook, settings. */
void
_PG_init(void)
{
	usage_http_init();
	usage_batch_init();
	usage_option_init();
}

/* The FDW handler: usage_fdw's callbacks. */
Datum
usage_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = usageGetForeignRelSize;
	routine->GetForeignPaths = usageGetForeignPaths;
	routine->GetForeignPlan = usageGetForeignPlan;
	routine->BeginForeignScan = usageBeginForeignScan;
	routine->IterateForeignScan = usageIterateForeignScan;
	routine->ReScanForeignScan = usageReScanForeignScan;
	routine->EndForeignScan = usageEndForeignScan;
	routine->ExplainForeignScan = usageExplainForeignScan;
	routine->ImportForeignSchema = usageImportForeignSchema;
	routine->IsForeignPathAsyncCapable = usageIsForeignPathAsyncCapable;
	routine->ForeignAsyncRequest = usageForeignAsyncRequest;
	routine->ForeignAsyncConfigureWait = usageForeignAsyncConfigureWait;
	routine->ForeignAsyncNotify = usageForeignAsyncNotify;

	PG_RETURN_POINTER(routine);
}

/* ----------------------------------------------------------------
 *		Column mapping
 * ----------------------------------------------------------------
 */

/*
 * How each attribute of the table is filled: from a response key, as the
 * echo of a request parameter, or with the whole item.  A column whose key
 * matches a parameter of the endpoint is a parameter column: clauses on it
 * are pushed down.  *param_col is set to the map from parameter to column:
 * per parameter of the endpoint, the index of its (first) column, or -1
 * when the table has none.
 */
static UsageColumn *
map_columns(Relation rel, const UsageEndpoint *ep, bool for_execution,
			int **param_col)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	UsageColumn *cols = palloc0(sizeof(UsageColumn) * Max(tupdesc->natts, 1));
	int		   *map = palloc(sizeof(int) * Max(ep->nparams, 1));

	for (int p = 0; p < ep->nparams; p++)
		map[p] = -1;

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		UsageColumn *c = &cols[i];
		bool		explicit_key;
		int			p;

		c->param = -1;
		if (att->attisdropped)
		{
			c->kind = USAGE_COL_DROPPED;
			continue;
		}
		c->name = pstrdup(NameStr(att->attname));
		c->typid = att->atttypid;
		c->typmod = att->atttypmod;
		c->key = usage_column_json_key(RelationGetRelid(rel), att->attnum, &explicit_key);
		if (!explicit_key && strcmp(c->key, c->name) != 0)
			c->alt_key = c->name;

		if (strcmp(c->key, "*") == 0)
		{
			if (c->typid != JSONOID && c->typid != JSONBOID && c->typid != TEXTOID)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("column \"%s\" of foreign table \"%s\" has json_key '*' but type %s",
								c->name, RelationGetRelationName(rel),
								format_type_be(c->typid)),
						 errhint("json_key '*' (the whole item) needs a json, jsonb or text column.")));
			c->kind = USAGE_COL_WHOLE_ITEM;
		}
		else
		{
			p = usage_find_param_by_key(ep, c->key);
			if (p < 0 && c->alt_key)
				p = usage_find_param_by_key(ep, c->alt_key);
			c->param = p;
			c->kind = (p >= 0 && ep->params[p].echo) ? USAGE_COL_ECHO : USAGE_COL_RESPONSE;
			if (p >= 0 && map[p] < 0)
				map[p] = i;
		}

		if (for_execution)
		{
			getTypeInputInfo(c->typid, &c->typinput, &c->typioparam);
			fmgr_info(c->typinput, &c->inflinfo);
		}
	}
	*param_col = map;
	return cols;
}

/* ----------------------------------------------------------------
 *		Planning
 * ----------------------------------------------------------------
 */

static double
estimate_fanout(const UsageEndpoint *ep, UsageOptions *opts, List *conds,
				List *exprs)
{
	double		fanout = 1;

	for (int p = 0; p < ep->nparams; p++)
	{
		double		n = -1;
		ListCell   *lc;

		/* a bound parameter takes one value; a date range is one request */
		if (ep->params[p].kind == USAGE_KIND_DATE_RANGE ||
			usage_param_default(opts, &ep->params[p]) != NULL)
			continue;
		foreach(lc, conds)
		{
			UsageCond  *c = (UsageCond *) lfirst(lc);
			double		k = 1;

			if (c->param != p)
				continue;
			if (c->op == USAGE_OP_ANY)
			{
				Node	   *e = (Node *) list_nth(exprs, c->expr_index);

				if (IsA(e, Const) && !((Const *) e)->constisnull)
				{
					Oid			elemtype;
					Datum	   *elems;

					/* as EXPLAIN's Fan-out and the executor count them */
					k = usage_distinct_elements(((Const *) e)->constvalue,
												&elemtype, &elems, NULL);
				}
				else if (IsA(e, ArrayExpr))
					k = list_length(((ArrayExpr *) e)->elements);
				else
					k = USAGE_UNKNOWN_FANOUT;
			}
			n = (n < 0) ? k : Min(n, k);
		}
		if (n >= 0)
			fanout *= Max(n, 1);
	}
	return fanout;
}

/*
 * Rows one request (all its pages) returns: the endpoint's default, narrowed
 * by each parameter that a condition or a default supplies.
 */
static double
estimate_call_rows(const UsageEndpoint *ep, UsageOptions *opts, List *conds)
{
	double		rows = ep->rows_per_request;

	for (int p = 0; p < ep->nparams; p++)
	{
		if (ep->params[p].narrows < 1.0 && usage_param_supplied(ep, opts, conds, p))
			rows *= ep->params[p].narrows;
	}
	return Max(rows, 1.0);
}

/* HTTP requests one call needs: its pages */
static double
pages_per_call(const UsageEndpoint *ep, UsageOptions *opts, double rows)
{
	if (ep->paging == USAGE_PAGING_NONE)
		return 1;
	return Max(ceil(rows / opts->page_size), 1);
}

/*
 * The first parameter that the scan's requests must carry but that neither
 * a condition nor a binding supplies, or -1.  A request must carry the
 * parameters the endpoint requires, and those whose echo column a clause
 * of the query tests: a row can only be known to satisfy such a clause
 * when its echo column holds the value its request was made with.
 */
static int
missing_param(const UsageEndpoint *ep, UsageOptions *opts, List *conds,
			  Bitmapset *tested)
{
	for (int p = 0; p < ep->nparams; p++)
	{
		if ((ep->params[p].required || bms_is_member(p, tested)) &&
			!usage_param_supplied(ep, opts, conds, p))
			return p;
	}
	return -1;
}

/*
 * The error for a scan whose requests would lack parameter p: a required
 * one (with a HINT showing a WHERE clause that works), or one whose echo
 * column the query tests.  Raised at plan time.
 */
USAGE_NORETURN static void
report_missing_param(UsagePlanInfo *info, int p)
{
	const UsageEndpoint *ep = info->opts->endpoint;
	const UsageParamDef *def = &ep->params[p];
	const char *colname = NULL;

	if (info->param_col[p] >= 0)
		colname = info->cols[info->param_col[p]].name;

	if (def->key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" needs option \"%s\" for endpoint \"%s\"",
						info->opts->server_name, def->option, ep->name)));
	if (colname == NULL && def->option)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("endpoint \"%s\" requires parameter \"%s\", but foreign table %s has no column for it and no default",
						ep->name, def->key, info->opts->table_name),
				 errhint("Add a column whose json_key is \"%s\", or set the table option %s.",
						 def->key, def->option)));
	if (colname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("endpoint \"%s\" requires parameter \"%s\", but foreign table %s has no column for it",
						ep->name, def->key, info->opts->table_name),
				 errhint("Add a column whose json_key is \"%s\".", def->key)));
	if (bms_is_member(p, info->join_params))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("a query on foreign table %s takes \"%s\" from a join that PostgreSQL cannot run as a nested loop over the table",
						info->opts->table_name, colname),
				 errdetail("Endpoint \"%s\" needs the request parameter \"%s\" in every request; a semi-join (EXISTS, IN) whose values come from two relations, or a FULL or RIGHT join, cannot pass them to the scan.",
						   ep->name, def->api_name),
				 errhint("Write it as an inner join (with DISTINCT if need be), or give \"%s\" in WHERE.",
						 colname)));
	if (!def->required)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("a query on foreign table %s tests column \"%s\", but its requests would not carry that parameter",
						info->opts->table_name, colname),
				 errdetail("Column \"%s\" echoes the request parameter \"%s\" of endpoint \"%s\"; in rows of requests without it, it is %s, so no row could be known to satisfy the condition.",
						   colname, def->api_name, ep->name,
						   def->absent_echo ? "the API's default" : "NULL"),
				 def->option ?
				 errhint("Filter %s with = or IN (with constants, parameters or a join), or bind it with the table option %s.",
						 colname, def->option) :
				 errhint("Filter %s with = or IN (with constants, parameters or a join).",
						 colname)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 def->kind == USAGE_KIND_DATE_RANGE ?
			 errmsg("a query on foreign table %s must give a lower bound on \"%s\"",
					info->opts->table_name, colname) :
			 errmsg("a query on foreign table %s must give a value for \"%s\"",
					info->opts->table_name, colname),
			 errdetail("Endpoint \"%s\" requires the request parameter \"%s\".",
					   ep->name, def->api_name),
			 def->option ?
			 errhint("Add a WHERE clause such as: %s, or set the option %s on the table or server.",
					 ep->example_where, def->option) :
			 errhint("Add a WHERE clause such as: %s.", ep->example_where)));
}

/* callback for generate_implied_equalities_for_column */
static bool
ec_member_is_column(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
					EquivalenceMember *em, void *arg)
{
	AttrNumber	attno = *(AttrNumber *) arg;
	Expr	   *expr = em->em_expr;

	while (expr && IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	return expr && IsA(expr, Var) &&
		((Var *) expr)->varno == (int) rel->relid &&
		((Var *) expr)->varattno == attno &&
		((Var *) expr)->varlevelsup == 0;
}

/* Is the column joined to another relation through an equivalence class? */
static bool
column_in_eclass_join(PlannerInfo *root, RelOptInfo *baserel, AttrNumber attno)
{
	if (!baserel->has_eclass_joins)
		return false;
	return generate_implied_equalities_for_column(root, baserel,
												  ec_member_is_column, &attno,
												  baserel->lateral_referencers) != NIL;
}

/*
 * The parameters whose echo columns the query's clauses test: referenced by
 * a restriction or join clause of the relation (a whole-row reference tests
 * every column), or joined through an equivalence class.
 */
static Bitmapset *
tested_echo_params(PlannerInfo *root, RelOptInfo *baserel, UsagePlanInfo *info)
{
	Bitmapset  *attrs = NULL;
	Bitmapset  *tested = NULL;
	ListCell   *lc;
	bool		whole_row;

	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &attrs);
	foreach(lc, baserel->joininfo)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &attrs);
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);

	for (int i = 0; i < info->natts; i++)
	{
		AttrNumber	attno = i + 1;

		if (info->cols[i].kind != USAGE_COL_ECHO)
			continue;
		if (whole_row ||
			bms_is_member(attno - FirstLowInvalidHeapAttributeNumber, attrs) ||
			column_in_eclass_join(root, baserel, attno))
			tested = bms_add_member(tested, info->cols[i].param);
	}
	return tested;
}

/*
 * GetForeignRelSize: classify the relation's restriction clauses into
 * pushed-down conditions, and estimate its rows: the fan-out of requests
 * times the rows of one request, times the selectivity of the clauses not
 * pushed down.  The planner state is kept in baserel->fdw_private.
 */
static void
usageGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	UsagePlanInfo *info = palloc0(sizeof(UsagePlanInfo));
	Relation	rel;
	ListCell   *lc;
	List	   *local = NIL;
	double		rows;

	info->opts = usage_get_options(foreigntableid);
	rel = table_open(foreigntableid, NoLock);
	info->cols = map_columns(rel, info->opts->endpoint, false,
							 &info->param_col);
	info->natts = RelationGetNumberOfAttributes(rel);
	table_close(rel, NoLock);

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		int			before = list_length(info->base.conds);

		usage_classify_clause(root, baserel, info->opts->endpoint, info->cols,
							  rinfo, NULL, &info->base);
		if (list_length(info->base.conds) == before)
			local = lappend(local, rinfo);
	}
	info->base.fanout = estimate_fanout(info->opts->endpoint, info->opts,
										info->base.conds, info->base.exprs);
	info->local_sel = clauselist_selectivity(root, local, baserel->relid,
											 JOIN_INNER, NULL);
	info->tested = tested_echo_params(root, baserel, info);

	rows = info->base.fanout * estimate_call_rows(info->opts->endpoint, info->opts,
												  info->base.conds);
	baserel->tuples = clamp_row_est(rows);
	baserel->rows = clamp_row_est(rows * info->local_sel);
	baserel->fdw_private = info;
}

/*
 * Would this join clause become a pushed-down condition?  Returns the
 * outer relations it needs, or NULL.
 */
static Relids
pushable_join_clause(PlannerInfo *root, RelOptInfo *baserel, UsagePlanInfo *info,
					 RestrictInfo *rinfo)
{
	UsagePushdown tmp = {0};
	Relids		outer;
	ListCell   *lc;

	if (!join_clause_is_movable_to(rinfo, baserel))
		return NULL;
	outer = bms_difference(rinfo->clause_relids, baserel->relids);
	if (bms_is_empty(outer))
		return NULL;
	usage_classify_clause(root, baserel, info->opts->endpoint, info->cols,
						  rinfo, outer, &tmp);
	foreach(lc, tmp.conds)
		info->join_params = bms_add_member(info->join_params,
										   ((UsageCond *) lfirst(lc))->param);
	return tmp.conds != NIL ? outer : NULL;
}

/*
 * The cost of calls requests of call_rows rows each, pages HTTP requests
 * per call: every HTTP request costs USAGE_REQUEST_COST of latency, divided
 * by the concurrency for calls (the pages of one call are sequential),
 * plus parsing every row.  The one cost of the scan's requests, for its
 * own paths and for the batched join's batches.
 */
void
usage_cost_calls(double calls, double call_rows, double pages,
				 int max_concurrency, Cost *startup, Cost *total)
{
	double		waves = Max(ceil(calls / Max(max_concurrency, 1)), 1);

	*startup = USAGE_REQUEST_COST;
	*total = USAGE_REQUEST_COST * waves * pages + calls * call_rows * USAGE_ROW_COST;
}

/* A scan path of fanout calls of call_rows rows each. */
static void
add_scan_path(PlannerInfo *root, RelOptInfo *baserel, UsagePlanInfo *info,
			  double fanout, double call_rows, bool disabled,
			  Relids required_outer)
{
	const UsageEndpoint *ep = info->opts->endpoint;
	double		rows = clamp_row_est(fanout * call_rows * info->local_sel);
	Cost		startup;
	Cost		total;

	usage_cost_calls(fanout, call_rows, pages_per_call(ep, info->opts, call_rows),
					 info->opts->max_concurrency, &startup, &total);
	add_path(baserel, (Path *)
			 usage_compat_foreignscan_path(root, baserel, rows, disabled,
										   startup, total, required_outer));
}

/* at most this many sets of outer relations get a parameterized path */
#define USAGE_MAX_PARAMETERIZATIONS 16

/* Add outer to the list of sets of relations, unless it is there. */
static List *
add_outer_set(List *outers, Relids outer)
{
	ListCell   *lc;

	foreach(lc, outers)
	{
		if (bms_equal((Relids) lfirst(lc), outer))
			return outers;
	}
	if (list_length(outers) >= USAGE_MAX_PARAMETERIZATIONS)
		return outers;
	return lappend(outers, outer);
}

/*
 * Add to outers the sets of outer relations of the join clauses that would
 * become pushed-down conditions.
 */
static List *
add_join_clause_outers(PlannerInfo *root, RelOptInfo *baserel,
					   UsagePlanInfo *info, List *clauses, List *outers)
{
	ListCell   *lc;

	foreach(lc, clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		Relids		outer = pushable_join_clause(root, baserel, info, rinfo);

		if (outer != NULL)
			outers = add_outer_set(outers,
								   bms_union(outer, baserel->lateral_relids));
	}
	return outers;
}

/*
 * The unions of the sets: parameters may come from several relations at
 * once (tenant_id from tenants, consumable_code from codes), and only the
 * parameterization by all of them gives every required parameter.  As
 * postgres_fdw does for its join clauses, the planner then joins the
 * suppliers first, or uses the star-schema nested loop.
 */
static List *
union_outer_sets(List *outers)
{
	for (int i = 1; i < list_length(outers); i++)
	{
		for (int j = 0; j < i; j++)
			outers = add_outer_set(outers,
								   bms_union((Relids) list_nth(outers, i),
											 (Relids) list_nth(outers, j)));
	}
	return outers;
}

/*
 * The parameterizations worth a path: those of the join clauses (of the
 * relation's joininfo, or implied by an equivalence class) on parameter
 * columns, and their unions.
 */
static List *
parameterizations(PlannerInfo *root, RelOptInfo *baserel, UsagePlanInfo *info)
{
	List	   *outers = add_join_clause_outers(root, baserel, info,
												baserel->joininfo, NIL);
	List	   *ppis = NIL;
	ListCell   *lc;

	for (int i = 0; i < info->natts && baserel->has_eclass_joins; i++)
	{
		AttrNumber	attno = i + 1;

		if (info->cols[i].kind == USAGE_COL_DROPPED || info->cols[i].param < 0)
			continue;
		outers = add_join_clause_outers(root, baserel, info,
										generate_implied_equalities_for_column(root, baserel,
																			   ec_member_is_column,
																			   &attno,
																			   baserel->lateral_referencers),
										outers);
	}
	foreach(lc, union_outer_sets(outers))
		ppis = lappend(ppis, get_baserel_parampathinfo(root, baserel,
													   (Relids) lfirst(lc)));
	return ppis;
}

/*
 * The parameterized scan of one parameterization, unless its requests
 * would still lack a parameter.
 */
static void
add_parameterized_path(PlannerInfo *root, RelOptInfo *baserel,
					   UsagePlanInfo *info, ParamPathInfo *ppi)
{
	const UsageEndpoint *ep = info->opts->endpoint;
	UsagePushdown pd = info->base;
	ListCell   *lc;

	pd.conds = list_copy(info->base.conds);
	pd.exprs = list_copy(info->base.exprs);
	foreach(lc, ppi->ppi_clauses)
		usage_classify_clause(root, baserel, ep, info->cols,
							  lfirst_node(RestrictInfo, lc),
							  ppi->ppi_req_outer, &pd);
	if (missing_param(ep, info->opts, pd.conds, info->tested) >= 0)
		return;
	add_scan_path(root, baserel, info,
				  estimate_fanout(ep, info->opts, pd.conds, pd.exprs),
				  estimate_call_rows(ep, info->opts, pd.conds),
				  false, ppi->ppi_req_outer);
}

/*
 * GetForeignPaths: offer the plain scan, and a parameterized scan for each
 * set of outer relations whose join clauses give request parameters.
 *
 * The plain scan is always offered, so that the planner always has a plan;
 * when its requests would lack a parameter (one the endpoint requires, or
 * one whose echo column the query tests) it is disabled, and should the
 * planner still choose it (no join order can supply the parameter),
 * GetForeignPlan raises the documented error.
 *
 * Parameterized paths: a join clause on a parameter column makes one
 * request per outer row (a nested loop).  They are the only paths when a
 * required parameter comes from a join, so the planner cannot pick a plan
 * in which the requirement is lost.
 */
static void
usageGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	UsagePlanInfo *info = (UsagePlanInfo *) baserel->fdw_private;
	const UsageEndpoint *ep = info->opts->endpoint;
	int			missing = missing_param(ep, info->opts, info->base.conds,
										info->tested);
	ListCell   *lc;

	add_scan_path(root, baserel, info, info->base.fanout,
				  estimate_call_rows(ep, info->opts, info->base.conds),
				  missing >= 0, NULL);
	foreach(lc, parameterizations(root, baserel, info))
		add_parameterized_path(root, baserel, info, (ParamPathInfo *) lfirst(lc));
}

/*
 * The echo columns that no request of a scan with these conditions
 * carries, as a list of Integer attribute numbers.  They read NULL, or
 * the API's default (aggregate_by_ownership false): the rows of the
 * requests that would carry another value were never asked for, so a test
 * of such a column cannot be answered.
 */
static List *
unsent_echo_columns(UsagePlanInfo *info, List *supplied)
{
	const UsageEndpoint *ep = info->opts->endpoint;
	List	   *result = NIL;

	for (int i = 0; i < info->natts; i++)
	{
		int			p = info->cols[i].param;

		if (info->cols[i].kind == USAGE_COL_ECHO &&
			!usage_param_supplied(ep, info->opts, supplied, p))
			result = lappend(result, makeInteger(i + 1));
	}
	return result;
}

/*
 * GetForeignPlan: the ForeignScan of the chosen path.  Its clauses (and a
 * batched join's keys) give the pushed-down conditions, whose value
 * expressions go into fdw_exprs and the rest into fdw_private (see
 * UsageScanPrivateIndex).  Raises the documented error when the requests
 * would still lack a parameter.
 */
static ForeignScan *
usageGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					ForeignPath *best_path, List *tlist, List *scan_clauses,
					Plan *outer_plan)
{
	UsagePlanInfo *info = (UsagePlanInfo *) baserel->fdw_private;
	UsagePushdown pd = {0};
	ListCell   *lc;
	List	   *fdw_private;
	List	   *batch_keys = best_path->fdw_private;	/* from batchjoin.c */
	UsageBatchKeys *batch = batch_keys_from_list(batch_keys);
	List	   *supplied;
	int			missing;

	/*
	 * Every clause stays a local qual: pushdown only narrows what is
	 * requested, PostgreSQL still checks each row.
	 */
	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (rinfo->pseudoconstant)
			continue;
		usage_classify_clause(root, baserel, info->opts->endpoint, info->cols,
							  rinfo, PATH_REQ_OUTER(&best_path->path), &pd);
	}
	/* the keys of a batched join supply their parameters too */
	supplied = list_concat(list_copy(pd.conds),
						   batch_key_conds(batch, -1, USAGE_OP_EQ));
	missing = missing_param(info->opts->endpoint, info->opts, supplied,
							info->tested);
	if (missing >= 0)
		report_missing_param(info, missing);

	/* the slots of UsageScanPrivateIndex, in order */
	fdw_private = list_make3(usage_conds_to_list(pd.conds), batch_keys,
							 unsent_echo_columns(info, supplied));
	Assert(list_length(fdw_private) == USAGE_PRIVATE_NSLOTS);

	return make_foreignscan(tlist,
							extract_actual_clauses(scan_clauses, false),
							baserel->relid,
							pd.exprs,
							fdw_private,
							NIL, NIL, outer_plan);
}

/* ----------------------------------------------------------------
 *		Execution
 * ----------------------------------------------------------------
 */

/*
 * Release the transfers of the calls.  (Those that transaction end released
 * already have their slots cleared.)
 */
static void
release_calls(UsageScanState *st)
{
	for (int i = 0; i < st->ncalls && st->calls; i++)
		usage_http_release(&st->calls[i].xfer);
}

/* close the asynchronous execution pipe, if any */
static void
close_ready_pipe(UsageScanState *st)
{
	if (st->ready_pipe[0] < 0)
		return;
	close(st->ready_pipe[0]);
	close(st->ready_pipe[1]);
	ReleaseExternalFD();
	ReleaseExternalFD();
	st->ready_pipe[0] = st->ready_pipe[1] = -1;
}

/*
 * scan_cxt reset or deleted (end of scan, rescan, or error): stop transfers
 * before the calls holding their owner slots go, and close the pipe.
 */
static void
scan_cxt_cleanup(void *arg)
{
	release_calls((UsageScanState *) arg);
	close_ready_pipe((UsageScanState *) arg);
}

/* Forget a (re)scan's calls and rows, to start afresh. */
static void
reset_scan(UsageScanState *st)
{
	release_calls(st);
	MemoryContextReset(st->scan_cxt);
	MemoryContextReset(st->batch_cxt);
	/* reset callbacks run once: register again */
	MemoryContextRegisterResetCallback(st->scan_cxt, &st->cleanup);
	st->started = false;
	st->sets = NULL;
	st->calls = NULL;
	st->ncalls = st->maxcalls = 0;
	st->filling = NULL;
	st->cur_call = 0;
	st->next_start = 0;
	st->rows = NULL;
	st->nrows = st->maxrows = st->next_row = 0;
}

/*
 * Refuse a statement that tests, above this scan, an echo column that no
 * request of the scan carries (see echo_check.c).  Also for EXPLAIN: the
 * plan is refused as the planner refuses a test at the scan.
 */
static void
check_echo_tests(ForeignScanState *node)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	Bitmapset  *unsent = NULL;
	ListCell   *lc;

	foreach(lc, (List *) list_nth(fsplan->fdw_private, USAGE_PRIVATE_UNSENT_ECHO))
		unsent = bms_add_member(unsent, intVal(lfirst(lc)));
	usage_check_echo_tests(node->ss.ps.state->es_plannedstmt,
						   fsplan->scan.scanrelid, unsent,
						   RelationGetRelid(st->rel), st->opts->table_name);
}

/*
 * BeginForeignScan: read the plan's fdw_private, map the columns and, unless
 * only EXPLAIN is run, get the user's credentials and set up the scan's
 * memory contexts.  No request is sent before the first tuple is asked for.
 */
static void
usageBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	UsageScanState *st = palloc0(sizeof(UsageScanState));
	Relation	rel = node->ss.ss_currentRelation;
	Oid			userid;

	node->fdw_state = st;
	st->ready_pipe[0] = st->ready_pipe[1] = -1;
	st->rel = rel;
	st->tupdesc = RelationGetDescr(rel);
	st->opts = usage_get_options(RelationGetRelid(rel));
	st->ep = st->opts->endpoint;
	st->conds = usage_conds_from_list(list_nth(fsplan->fdw_private,
											   USAGE_PRIVATE_CONDS));
	st->natts = st->tupdesc->natts;
	st->cols = map_columns(rel, st->ep, (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0,
						   &st->param_col);
	st->batch = batch_keys_from_list(list_nth(fsplan->fdw_private,
											  USAGE_PRIVATE_BATCH_KEYS));
	check_echo_tests(node);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	userid = usage_compat_scan_user(fsplan, estate);
	usage_get_user_options(st->opts, GetForeignTable(RelationGetRelid(rel))->serverid,
						   userid);

	st->expr_states = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	st->what = psprintf("foreign table %s (endpoint %s)", st->opts->table_name, st->ep->name);
	st->bearer = usage_auth_bearer(st->opts, &st->stats);
	st->dvalues = palloc(sizeof(Datum) * Max(st->natts, 1));
	st->dnulls = palloc(sizeof(bool) * Max(st->natts, 1));
	st->conv.col = -1;

	st->scan_cxt = AllocSetContextCreate(estate->es_query_cxt, "usage_fdw scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->batch_cxt = AllocSetContextCreate(estate->es_query_cxt, "usage_fdw page",
										  ALLOCSET_DEFAULT_SIZES);
	st->cleanup.func = scan_cxt_cleanup;
	st->cleanup.arg = st;
	MemoryContextRegisterResetCallback(st->scan_cxt, &st->cleanup);
}

/*
 * Can the combination of values hold?  A pair of points in time where one
 * must not come after the other (startDate after endDate) cannot: the API
 * would refuse it, and no row could satisfy the query's clauses.
 */
static bool
combination_holds(const UsageEndpoint *ep, const UsageValueSet *sets,
				  const int *choice)
{
	for (int p = 0; p < ep->nparams; p++)
	{
		int			q;

		if (ep->params[p].not_after == NULL || !sets[p].sent ||
			(q = usage_find_param_by_key(ep, ep->params[p].not_after)) < 0 ||
			!sets[q].sent)
			continue;
		if (sets[p].values[choice[p]].num > sets[q].values[choice[q]].num)
			return false;
	}
	return true;
}

/* The k-th combination of values, the last parameter varying fastest. */
static void
combination(const UsageEndpoint *ep, const UsageValueSet *sets, int k,
			int *choice)
{
	for (int p = ep->nparams - 1; p >= 0; p--)
	{
		int			nv = Max(sets[p].nvalues, 1);

		choice[p] = k % nv;
		k /= nv;
	}
}

/*
 * Add the calls of one set of values: one per combination that can hold.
 * tuple is the key tuple of a batched join they are made for, or -1.
 */
static void
add_calls(UsageScanState *st, UsageValueSet *sets, bool empty, int tuple)
{
	const UsageEndpoint *ep = st->ep;
	double		n = empty ? 0 : 1;

	for (int p = 0; p < ep->nparams && n > 0; p++)
		n *= Max(sets[p].nvalues, 1);
	if (st->ncalls + n > USAGE_MAX_REQUESTS_PER_SCAN)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the query on foreign table %s would need %.0f requests, more than the limit of %d",
						st->opts->table_name, st->ncalls + n, USAGE_MAX_REQUESTS_PER_SCAN),
				 errhint("Narrow the IN lists of the WHERE clause.")));
	if (n == 0)
		return;
	if (st->ncalls + (int) n > st->maxcalls)
	{
		st->maxcalls = Max(st->ncalls + (int) n, st->maxcalls * 2);
		st->calls = st->calls ?
			repalloc(st->calls, sizeof(UsageCall) * st->maxcalls) :
			palloc(sizeof(UsageCall) * st->maxcalls);
	}
	for (int k = 0; k < (int) n; k++)
	{
		UsageCall  *call = &st->calls[st->ncalls];

		memset(call, 0, sizeof(UsageCall));
		call->sets = sets;
		call->tuple = tuple;
		call->choice = palloc0(sizeof(int) * ep->nparams);
		combination(ep, sets, k, call->choice);
		if (combination_holds(ep, sets, call->choice))
			st->ncalls++;
	}
}

/*
 * Evaluate the parameters and lay out the requests of this (re)scan: one
 * call per combination of values that can hold; under a batched join, that
 * for each key tuple of the batch in turn.
 */
static void
begin_requests(ForeignScanState *node, UsageScanState *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);
	bool		empty;

	st->ncalls = st->maxcalls = 0;
	st->calls = NULL;
	if (st->batch == NULL)
	{
		st->sets = usage_evaluate_params(st->ep, st->opts, st->cols, st->param_col,
										 st->conds, st->expr_states, econtext,
										 &empty);
		add_calls(st, st->sets, empty, -1);
	}
	else
		begin_batch_requests(st, econtext);
	st->started = true;
	MemoryContextSwitchTo(old);
}

/* Request the page call->url of a call; the call owns the transfer. */
static void
send_page(UsageScanState *st, UsageCall *call)
{
	UsageHttpRequest req = {0};

	req.method = st->ep->method;
	req.url = call->url;
	req.body = call->body;
	req.content_type = "application/json";
	req.opts = st->opts;
	req.bearer = st->bearer;
	/* the bearer token travels in a header only and is never logged */
	elog(DEBUG1, "usage_fdw: %s %s%s%s", req.method, req.url,
		 req.body ? " " : "", req.body ? req.body : "");
	usage_http_start(&req, &st->stats, &call->xfer);
	st->pages++;
	/* get it on the wire now, not when we next wait */
	usage_http_poll();
}

static void
start_call(UsageScanState *st, int k)
{
	UsageCall  *call = &st->calls[k];
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);

	call->echo = palloc0(sizeof(Datum) * Max(st->natts, 1));
	call->echo_null = palloc0(sizeof(bool) * Max(st->natts, 1));
	for (int i = 0; i < st->natts; i++)
	{
		UsageColumn *c = &st->cols[i];
		UsageValueSet *set;

		if (c->kind != USAGE_COL_ECHO)
			continue;
		set = &call->sets[c->param];
		if (set->values == NULL)
			call->echo_null[i] = true;
		else
		{
			UsageValue *v = &set->values[call->choice[c->param]];

			call->echo[i] = v->echo;
			call->echo_null[i] = v->echo_isnull;
		}
	}

	usage_build_request(st->opts, call->sets, call->choice, &call->url,
						&call->body);
	MemoryContextSwitchTo(old);

	send_page(st, call);
}

/* keep up to max_concurrency requests started ahead of the one being read */
static void
fill_window(UsageScanState *st)
{
	while (st->next_start < st->ncalls &&
		   st->next_start - st->cur_call < st->opts->max_concurrency)
	{
		start_call(st, st->next_start);
		st->next_start++;
	}
}

/*
 * Error context of a page being parsed: the column and value being
 * converted (clipped), and the request the response answers (its path and
 * query, not the host).
 */
static void
conversion_error_callback(void *arg)
{
	UsageScanState *st = (UsageScanState *) arg;
	const UsageConvLocation *loc = &st->conv;

	if (loc->col >= 0)
	{
		const char *v = loc->value;

		errcontext("column \"%s\" of foreign table %s (endpoint %s), value \"%s%s\"",
				   st->cols[loc->col].name, st->opts->table_name, st->ep->name,
				   v ? pnstrdup(v, pg_mbcliplen(v, strlen(v), 200)) : "",
				   v && strlen(v) > 200 ? "..." : "");
	}
	if (loc->url)
	{
		const char *p = strstr(loc->url, "://");

		p = p ? strchr(p + 3, '/') : NULL;
		errcontext("response to %s %s for foreign table %s",
				   st->ep->method, p ? p : loc->url, st->opts->table_name);
	}
}

/*
 * usage_item_callback of the JSON parser: one response item, its values as
 * text per attribute, becomes a row of the page (echo columns from the
 * request).
 */
static void
add_row(void *arg, char **values)
{
	UsageScanState *st = (UsageScanState *) arg;
	UsageCall  *call = st->filling;

	for (int i = 0; i < st->natts; i++)
	{
		UsageColumn *c = &st->cols[i];

		switch (c->kind)
		{
			case USAGE_COL_DROPPED:
				st->dnulls[i] = true;
				break;
			case USAGE_COL_ECHO:
				st->dvalues[i] = call->echo[i];
				st->dnulls[i] = call->echo_null[i];
				break;
			case USAGE_COL_RESPONSE:
			case USAGE_COL_WHOLE_ITEM:
				if (values[i] == NULL)
				{
					st->dnulls[i] = true;
					break;
				}
				st->conv.col = i;
				st->conv.value = values[i];
				st->dvalues[i] = InputFunctionCall(&c->inflinfo, values[i],
												   c->typioparam, c->typmod);
				st->dnulls[i] = false;
				st->conv.col = -1;
				break;
		}
	}
	if (st->nrows == st->maxrows)
	{
		st->maxrows = Max(64, st->maxrows * 2);
		st->rows = st->rows ? repalloc(st->rows, sizeof(HeapTuple) * st->maxrows)
			: palloc(sizeof(HeapTuple) * st->maxrows);
	}
	st->rows[st->nrows++] = heap_form_tuple(st->tupdesc, st->dvalues, st->dnulls);
}

/*
 * Is the media type (the Content-Type before any parameter) JSON?
 * application/json or application/<x>+json, in any letter case (RFC 9110
 * 8.3.1), blanks around it ignored.
 */
static bool
json_media_type(const char *ct, const char *semi)
{
	size_t		mlen = semi ? (size_t) (semi - ct) : strlen(ct);
	char	   *media;

	while (mlen > 0 && (ct[mlen - 1] == ' ' || ct[mlen - 1] == '\t'))
		mlen--;
	while (mlen > 0 && (*ct == ' ' || *ct == '\t'))
		ct++, mlen--;
	media = pnstrdup(ct, mlen);

	return pg_strcasecmp(media, "application/json") == 0 ||
		(mlen > strlen("application/+json") &&
		 pg_strncasecmp(media, "application/", 12) == 0 &&
		 strchr(media + 12, '/') == NULL &&
		 pg_strcasecmp(media + mlen - 5, "+json") == 0);
}

/*
 * The value of the Content-Type parameter starting at name, if it is
 * charset: *value and *vend delimit it, quotes removed.
 */
static bool
charset_param(const char *name, const char **value, const char **vend)
{
	const char *v;
	const char *e;

	while (*name == ' ' || *name == '\t')
		name++;
	if (pg_strncasecmp(name, "charset", 7) != 0)
		return false;
	v = name + 7;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v != '=')
		return false;
	v++;
	while (*v == ' ' || *v == '\t')
		v++;
	e = strchr(v, ';');
	if (e == NULL)
		e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e - v >= 2 && *v == '"' && e[-1] == '"')
		v++, e--;
	*value = v;
	*vend = e;
	return true;
}

/*
 * check_content_type
 *		Refuse a response whose Content-Type is not JSON.
 *
 * Accepted: none at all, or a JSON media type (json_media_type).
 * Parameters are ignored except charset, which must be utf-8 (any case,
 * quoted or not) when given: JSON is UTF-8.  Called with the response's
 * error context in place.
 */
static void
check_content_type(UsageScanState *st, UsageTransfer *xfer)
{
	const char *ct = usage_http_content_type(xfer);
	const char *semi;

	if (ct == NULL)
		return;
	semi = strchr(ct, ';');
	if (!json_media_type(ct, semi))
	{
		size_t		len;
		const char *body = usage_http_body(xfer, &len);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("API response has content type \"%s\", expected application/json",
						usage_api_text(ct, strlen(ct), 200)),
				 errdetail("The response body starts with \"%s\".",
						   usage_api_text(body, len, 200))));
	}

	/* parameters: only charset matters */
	for (const char *p = semi; p != NULL; p = strchr(p + 1, ';'))
	{
		const char *value;
		const char *vend;

		if (!charset_param(p + 1, &value, &vend))
			continue;
		if (vend - value == 5 && pg_strncasecmp(value, "utf-8", 5) == 0)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("API response has charset \"%s\", expected utf-8",
						usage_api_text(value, vend - value, 100)),
				 errdetail("JSON responses must be encoded in UTF-8; the Content-Type was \"%s\".",
						   usage_api_text(ct, strlen(ct), 200))));
	}
}

/*
 * await_page
 *		Wait for the page of a call, and fail unless it came with HTTP 200.
 *
 * http.c retries what is worth retrying, a 401 with a new token included.
 */
static void
await_page(UsageScanState *st, UsageCall *call)
{
	usage_http_wait(call->xfer);
	if (usage_http_failure(call->xfer) != USAGE_FAIL_NONE)
		usage_http_report_failure(call->xfer, st->what);
}

/*
 * Add a page's totalCount to the scan's.  totalCount counts all pages of a
 * call: once per call.  The sum over a fan-out saturates instead of
 * wrapping around.
 */
static void
count_total(UsageScanState *st, UsageCall *call, const UsageParseResult *res)
{
	int64		sum;

	if (!res->has_total || call->total_counted)
		return;
	if (pg_add_s64_overflow(st->total_count, res->total_count, &sum))
		sum = res->total_count > 0 ? PG_INT64_MAX : PG_INT64_MIN;
	st->has_total = true;
	st->total_count = sum;
	call->total_counted = true;
}

/*
 * parse_page
 *		Parse the call's page, just arrived, into st->rows; then release its
 *		transfer and request the call's next page, if any, so that it
 *		downloads while the executor consumes this one.
 *
 * Every error about the response names it (conversion_error_callback).
 */
static void
parse_page(UsageScanState *st, UsageCall *call)
{
	UsageParseResult res;
	const char *body;
	size_t		len;
	MemoryContext old;
	ErrorContextCallback errcb;
	char	   *next_url;

	MemoryContextReset(st->batch_cxt);
	st->rows = NULL;
	st->nrows = st->maxrows = st->next_row = 0;
	st->filling = call;
	st->conv.url = call->url;

	errcb.callback = conversion_error_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	check_content_type(st, call->xfer);

	old = MemoryContextSwitchTo(st->batch_cxt);
	body = usage_http_body(call->xfer, &len);
	usage_parse_response(body, len, st->ep->items_key, st->cols, st->natts,
						 add_row, st, &res);
	MemoryContextSwitchTo(old);
	call->npages++;
	count_total(st, call, &res);

	usage_http_release(&call->xfer);
	next_url = usage_next_page_url(st->opts, call->url, res.next_link,
								   call->npages, &call->followed, st->scan_cxt);
	if (next_url)
	{
		call->url = next_url;
		send_page(st, call);
	}

	error_context_stack = errcb.previous;
	st->conv.url = NULL;
}

/*
 * fetch_next_batch
 *		Parse the next page into st->rows.  Returns false at the end of the
 *		scan.
 *
 * Takes the calls in order, each page of the current call in turn, while
 * up to max_concurrency calls ahead of it are under way.
 */
static bool
fetch_next_batch(UsageScanState *st)
{
	while (st->cur_call < st->ncalls)
	{
		UsageCall  *call;

		fill_window(st);
		call = &st->calls[st->cur_call];
		if (call->xfer == NULL)
		{
			/* all pages of this call are done */
			if (call->followed)
				hash_destroy(call->followed);
			call->followed = NULL;
			st->cur_call++;
			continue;
		}
		await_page(st, call);
		parse_page(st, call);
		if (st->nrows > 0)
			return true;
	}
	return false;
}

/*
 * IterateForeignScan: the next row, in request, page and item order; the
 * first call evaluates the parameters and lays out the requests.
 */
static TupleTableSlot *
usageIterateForeignScan(ForeignScanState *node)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (!st->started)
		begin_requests(node, st);

	while (st->next_row >= st->nrows)
	{
		if (!fetch_next_batch(st))
			return ExecClearTuple(slot);
	}
	ExecStoreHeapTuple(st->rows[st->next_row++], slot, false);
	st->rows_returned++;
	/* let the requests in flight make progress while rows are consumed */
	if ((st->rows_returned & 255) == 0 && st->next_start > st->cur_call)
		usage_http_poll();
	return slot;
}

/* ReScanForeignScan: drop what is in flight; the next row starts over. */
static void
usageReScanForeignScan(ForeignScanState *node)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	/* parameters may have changed: evaluate and request again */
	reset_scan(st);
}

/* EndForeignScan: stop the transfers and free the scan's memory. */
static void
usageEndForeignScan(ForeignScanState *node)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	if (st == NULL || st->scan_cxt == NULL)
		return;
	release_calls(st);
	st->ncalls = 0;
	MemoryContextDelete(st->scan_cxt);
	MemoryContextDelete(st->batch_cxt);
	st->scan_cxt = st->batch_cxt = NULL;
}

/*
 * EXPLAIN: the request template of the scan (see explain.c) and its
 * fan-out.
 */
static void
explain_request(UsageScanState *st, ForeignScan *fsplan, ExplainState *es)
{
	char	   *body = NULL;
	char	   *legend = NULL;
	int			fanout;
	char	   *request;
	List	   *conds = st->conds;
	List	   *exprs = fsplan->fdw_exprs;

	if (st->batch)
	{
		/* each key of the batch, shown as a value known at execution */
		conds = list_concat(list_copy(conds),
							batch_key_conds(st->batch, list_length(exprs),
											USAGE_OP_ANY));
		exprs = list_copy(exprs);
		for (int k = 0; k < st->batch->nkeys; k++)
		{
			Param	   *p = makeNode(Param);

			p->paramkind = PARAM_EXEC;
			p->paramid = -1;	/* explain.c: a key of the batch */
			p->paramtype = st->batch->valtypes[k];
			p->paramtypmod = -1;
			p->location = -1;
			exprs = lappend(exprs, p);
		}
	}
	request = usage_describe_request(st->opts->endpoint, st->opts, st->cols,
									 st->param_col, conds, exprs,
									 &fanout, &body, &legend);
	ExplainPropertyText("Request", request, es);
	if (body)
		ExplainPropertyText("Request Body", body, es);
	if (legend)
		ExplainPropertyText("Request Parameters", legend, es);
	if (fanout >= 0)
		ExplainPropertyInteger("Fan-out", fanout == 1 ? "request" : "requests", fanout, es);
	else
		ExplainPropertyText("Fan-out", "known at execution", es);
}

/* EXPLAIN ANALYZE: what the scan's HTTP traffic was. */
static void
explain_http_stats(UsageScanState *st, ExplainState *es)
{
	if (es->format == EXPLAIN_FORMAT_TEXT)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfo(&buf, "requests=" INT64_FORMAT " retries=" INT64_FORMAT
						 " pages=" INT64_FORMAT " rows=" INT64_FORMAT
						 " bytes=" INT64_FORMAT,
						 st->stats.requests, st->stats.retries, st->pages,
						 st->rows_returned, st->stats.bytes);
		if (st->has_total)
			appendStringInfo(&buf, " total_count=" INT64_FORMAT, st->total_count);
		if (es->timing)
			appendStringInfo(&buf, " wait=%.3f ms", st->stats.wait_ms);
		ExplainPropertyText("HTTP", buf.data, es);
		return;
	}
	ExplainPropertyInteger("HTTP Requests", NULL, st->stats.requests, es);
	ExplainPropertyInteger("HTTP Retries", NULL, st->stats.retries, es);
	ExplainPropertyInteger("HTTP Pages", NULL, st->pages, es);
	ExplainPropertyInteger("HTTP Rows", NULL, st->rows_returned, es);
	ExplainPropertyInteger("HTTP Response Bytes", NULL, st->stats.bytes, es);
	if (st->has_total)
		ExplainPropertyInteger("HTTP Total Count", NULL, st->total_count, es);
	if (es->timing)
		ExplainPropertyFloat("HTTP Wait Time", "ms", st->stats.wait_ms, 3, es);
}

/*
 * ExplainForeignScan: the request template (method, path and query, body,
 * the placeholders' legend, the fan-out) and, under ANALYZE, the HTTP
 * traffic of the scan.
 */
static void
usageExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	explain_request(st, (ForeignScan *) node->ss.ps.plan, es);
	if (es->analyze)
		explain_http_stats(st, es);
}

/* ImportForeignSchema: one foreign table per endpoint (see ddl.c). */
static List *
usageImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	return usage_import_foreign_schema(stmt, serverOid);
}

/* ----------------------------------------------------------------
 *		Asynchronous execution (PostgreSQL 14 and later)
 *
 * Under an Append (foreign partitions, a UNION ALL of foreign tables) the
 * scans run asynchronously, so that their requests are in flight at the
 * same time.  The first request for a tuple of each scan only sends its
 * requests and leaves the answer pending, so the Append starts every
 * scan's requests before it waits for any.  The backend's one libcurl
 * multi handle moves every transfer forward whenever any scan waits, and
 * a retry sleeping in backoff has no socket at all; so a scan does not
 * hand the Append a socket to wait on: it registers an always-readable
 * pipe, so that the Append notifies it at once, and waits (interruptibly,
 * driving all transfers) for its page when notified, after the Append has
 * released its wait event set (an error raised while that set exists would
 * leak its descriptor before PostgreSQL 17).  While the Append still has
 * synchronous children to run, a scan whose page has not arrived registers
 * nothing and lets them run.
 * ----------------------------------------------------------------
 */
/*
 * IsForeignPathAsyncCapable: whether the scan may run asynchronously (the
 * async_capable option, on by default).
 */
static bool
usageIsForeignPathAsyncCapable(ForeignPath *path)
{
	UsagePlanInfo *info = (UsagePlanInfo *) path->path.parent->fdw_private;

	return info->opts->async_capable;
}

/* Can the next tuple (or the end of the scan) be had without waiting? */
static bool
scan_ready(UsageScanState *st)
{
	UsageCall  *call;

	if (st->next_row < st->nrows || st->cur_call >= st->ncalls)
		return true;
	call = &st->calls[st->cur_call];
	return call->xfer == NULL || usage_http_is_done(call->xfer);
}

/*
 * Deliver the next tuple, or the end of the scan (an empty slot), through
 * the ForeignScan node itself, which applies the local quals and the
 * projection as it does for a synchronous scan.
 */
static void
produce_tuple(AsyncRequest *areq)
{
	PlanState  *requestee = areq->requestee;

	ExecAsyncRequestDone(areq, requestee->ExecProcNodeReal(requestee));
}

/* The read end of the scan's always-readable pipe, created on first use. */
static int
ready_fd(UsageScanState *st)
{
	if (st->ready_pipe[0] >= 0)
		return st->ready_pipe[0];
	if (!AcquireExternalFD())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not open a pipe for asynchronous execution: too many open files")));
	if (!AcquireExternalFD())
	{
		ReleaseExternalFD();
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not open a pipe for asynchronous execution: too many open files")));
	}
	if (pipe(st->ready_pipe) != 0 || write(st->ready_pipe[1], "", 1) != 1)
	{
		int			save_errno = errno;

		if (st->ready_pipe[0] >= 0)
			close_ready_pipe(st);
		else
		{
			ReleaseExternalFD();
			ReleaseExternalFD();
		}
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open a pipe for asynchronous execution: %m")));
	}
	return st->ready_pipe[0];
}

/*
 * ForeignAsyncRequest: the first time, send the scan's requests and leave
 * the answer pending; afterwards, produce the next tuple.
 */
static void
usageForeignAsyncRequest(AsyncRequest *areq)
{
	ForeignScanState *node = (ForeignScanState *) areq->requestee;
	UsageScanState *st = (UsageScanState *) node->fdw_state;

	if (!st->started)
	{
		(void) ready_fd(st);
		begin_requests(node, st);
		fill_window(st);
		ExecAsyncRequestPending(areq);
		return;
	}
	produce_tuple(areq);
}

/*
 * ForeignAsyncConfigureWait: have the Append notify the scan at once,
 * unless its page has not arrived and the Append has synchronous work left.
 * Never waits and never fails while the Append's wait event set exists
 * (the pipe is opened when the scan starts its requests).
 */
static void
usageForeignAsyncConfigureWait(AsyncRequest *areq)
{
	ForeignScanState *node = (ForeignScanState *) areq->requestee;
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	AppendState *requestor = (AppendState *) areq->requestor;

	Assert(IsA(requestor, AppendState));
	if (!requestor->as_syncdone && !scan_ready(st))
		return;
	AddWaitEventToSet(requestor->as_eventset, WL_SOCKET_READABLE,
					  st->ready_pipe[0], NULL, areq);
}

/*
 * ForeignAsyncNotify: produce the next tuple, waiting for its page if need
 * be (the Append's wait event set is gone by now).
 */
static void
usageForeignAsyncNotify(AsyncRequest *areq)
{
	produce_tuple(areq);
}


/* ----------------------------------------------------------------
 *		The scan side of a batched key join (batchjoin.c)
 *
 * The batched join plans the foreign table's scan as a plain scan whose
 * ForeignPath (and then the plan's fdw_private, slot
 * USAGE_PRIVATE_BATCH_KEYS) lists the parameters its keys supply, as
 * integer lists of UsageBatchKeyField fields.  Before each rescan the join hands over the distinct key tuples
 * of a batch; the scan makes the requests of each tuple in turn, and tells
 * for each row which tuple's request it came from.
 * ----------------------------------------------------------------
 */

/* One batch key, as an element of the USAGE_PRIVATE_BATCH_KEYS slot. */
List *
usage_batch_key_to_list(int param, Oid coltype, Oid valtype)
{
	int			fields[USAGE_KEY_NFIELDS];

	fields[USAGE_KEY_PARAM] = param;
	fields[USAGE_KEY_COLTYPE] = (int) coltype;
	fields[USAGE_KEY_VALTYPE] = (int) valtype;
	return usage_int_fields_to_list(fields, USAGE_KEY_NFIELDS);
}

/* The batch keys of a plan's fdw_private slot (NIL: none, NULL). */
static UsageBatchKeys *
batch_keys_from_list(List *list)
{
	UsageBatchKeys *b;
	ListCell   *lc;
	int			k = 0;

	if (list == NIL)
		return NULL;
	b = palloc0(sizeof(UsageBatchKeys));
	b->nkeys = list_length(list);
	b->params = palloc(sizeof(int) * b->nkeys);
	b->coltypes = palloc(sizeof(Oid) * b->nkeys);
	b->valtypes = palloc(sizeof(Oid) * b->nkeys);
	b->typlens = palloc(sizeof(int16) * b->nkeys);
	b->typbyvals = palloc(sizeof(bool) * b->nkeys);
	foreach(lc, list)
	{
		List	   *key = (List *) lfirst(lc);

		b->params[k] = usage_int_field(key, USAGE_KEY_PARAM);
		b->coltypes[k] = (Oid) usage_int_field(key, USAGE_KEY_COLTYPE);
		b->valtypes[k] = (Oid) usage_int_field(key, USAGE_KEY_VALTYPE);
		get_typlenbyval(b->valtypes[k], &b->typlens[k], &b->typbyvals[k]);
		k++;
	}
	return b;
}

/*
 * One condition per key: "param op value", the k-th key's value being
 * expression expr_base + k.
 */
static List *
batch_key_conds(UsageBatchKeys *batch, int expr_base, UsageCondOp op)
{
	List	   *conds = NIL;

	for (int k = 0; batch && k < batch->nkeys; k++)
	{
		UsageCond  *c = palloc0(sizeof(UsageCond));

		c->param = batch->params[k];
		c->op = op;
		c->expr_index = expr_base + k;
		c->coltype = batch->coltypes[k];
		conds = lappend(conds, c);
	}
	return conds;
}

/*
 * The scan's own conditions plus "param = key" for each key of a batched
 * join, the keys' values being the expressions after the scan's own.
 */
static List *
batch_conds(UsageScanState *st)
{
	return list_concat(list_copy(st->conds),
					   batch_key_conds(st->batch, list_length(st->expr_states),
									   USAGE_OP_EQ));
}

/*
 * The value sets of key tuple t of values (conds from batch_conds),
 * evaluated like any scan's (bindings, dedup, contradictions).
 */
static UsageValueSet *
batch_tuple_sets(UsageScanState *st, ExprContext *econtext, List *conds,
				 Datum *values, int t, bool *empty)
{
	UsageBatchKeys *b = st->batch;
	List	   *states = list_copy(st->expr_states);

	for (int k = 0; k < b->nkeys; k++)
	{
		Const	   *c = makeConst(b->valtypes[k], -1, InvalidOid,
								  b->typlens[k], values[t * b->nkeys + k],
								  false, b->typbyvals[k]);

		states = lappend(states, ExecInitExpr((Expr *) c, NULL));
	}
	return usage_evaluate_params(st->ep, st->opts, st->cols, st->param_col,
								 conds, states, econtext, empty);
}

/*
 * The requests of a rescan under a batched join: for each key tuple of the
 * batch, the calls of its value sets.  No tuple, no request.
 */
static void
begin_batch_requests(UsageScanState *st, ExprContext *econtext)
{
	List	   *conds = batch_conds(st);

	for (int t = 0; t < st->batch->ntuples; t++)
	{
		bool		empty;
		UsageValueSet *sets = batch_tuple_sets(st, econtext, conds,
											   st->batch->values, t, &empty);

		add_calls(st, sets, empty, t);
	}
}

/*
 * The calls one set of values makes: its combinations that can hold (as
 * add_calls lays them out).
 */
static double
count_calls(const UsageEndpoint *ep, UsageValueSet *sets, bool empty)
{
	double		n = empty ? 0 : 1;
	int		   *choice = palloc(sizeof(int) * Max(ep->nparams, 1));
	double		holding = 0;

	for (int p = 0; p < ep->nparams && n > 0; p++)
		n *= Max(sets[p].nvalues, 1);
	if (n > USAGE_MAX_REQUESTS_PER_SCAN)
		return n;
	for (int k = 0; k < (int) n; k++)
	{
		combination(ep, sets, k, choice);
		if (combination_holds(ep, sets, choice))
			holding++;
	}
	return holding;
}

/*
 * The batched join offers the scan ntuples key tuples: how many of them,
 * from the first, can one rescan take without more than the per-scan
 * limit of requests?  Known only now: the scan's own IN lists may come
 * from a subquery or a parameter.  At least one, so that a single tuple
 * over the limit fails as the plain plan would.
 */
int
usage_batch_offer(PlanState *ps, int ntuples, Datum *values)
{
	ForeignScanState *node = (ForeignScanState *) ps;
	UsageScanState *st = (UsageScanState *) node->fdw_state;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "usage_fdw batch offer",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	List	   *conds = batch_conds(st);
	double		total = 0;
	int			n;

	for (n = 0; n < ntuples; n++)
	{
		bool		empty;
		UsageValueSet *sets = batch_tuple_sets(st, ps->ps_ExprContext, conds,
											   values, n, &empty);
		double		calls = count_calls(st->ep, sets, empty);

		if (n > 0 && total + calls > USAGE_MAX_REQUESTS_PER_SCAN)
			break;
		total += calls;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return Max(n, 1);
}

/* Is the relation a foreign table of usage_fdw? */
bool
usage_rel_is_ours(RelOptInfo *rel)
{
	return rel->fdwroutine != NULL &&
		rel->fdwroutine->GetForeignPaths == usageGetForeignPaths &&
		rel->fdw_private != NULL;
}

/*
 * Is the join clause "param column = value from outer_relids" that a batch
 * can supply?  An equality pushed down like a join clause of a
 * parameterized scan, on a parameter other than the date range, whose value
 * depends on the outer relations (not a pseudo-constant).
 */
bool
usage_batch_key_clause(PlannerInfo *root, RelOptInfo *baserel,
					   RestrictInfo *rinfo, Relids outer_relids,
					   int *param, Expr **value, Oid *coltype)
{
	UsagePlanInfo *info = (UsagePlanInfo *) baserel->fdw_private;
	UsagePushdown tmp = {0};
	UsageCond  *c;

	if (rinfo->pseudoconstant)
		return false;
	usage_classify_clause(root, baserel, info->opts->endpoint, info->cols,
						  rinfo, outer_relids, &tmp);
	if (list_length(tmp.conds) != 1)
		return false;
	c = (UsageCond *) linitial(tmp.conds);
	if (c->op != USAGE_OP_EQ ||
		info->opts->endpoint->params[c->param].kind == USAGE_KIND_DATE_RANGE)
		return false;
	*value = (Expr *) linitial(tmp.exprs);
	if (!bms_overlap(pull_varnos(root, (Node *) *value), outer_relids))
		return false;
	*param = c->param;
	*coltype = c->coltype;
	return true;
}

/*
 * What the batched join's planning needs to know of the scan of baserel
 * whose parameters the keys (a List of usage_batch_key_to_list elements)
 * supply.  False when its requests would still lack a parameter.
 */
bool
usage_batch_inner_info(PlannerInfo *root, RelOptInfo *baserel, List *keys,
					   UsageBatchInner *inner)
{
	UsagePlanInfo *info = (UsagePlanInfo *) baserel->fdw_private;
	const UsageEndpoint *ep = info->opts->endpoint;
	List	   *conds = list_concat(list_copy(info->base.conds),
									batch_key_conds(batch_keys_from_list(keys),
													-1, USAGE_OP_EQ));

	if (missing_param(ep, info->opts, conds, info->tested) >= 0)
		return false;
	inner->call_rows = estimate_call_rows(ep, info->opts, conds);
	inner->fanout = Max(estimate_fanout(ep, info->opts, info->base.conds,
										info->base.exprs), 1);
	inner->pages = pages_per_call(ep, info->opts, inner->call_rows);
	inner->local_sel = info->local_sel;
	inner->max_concurrency = info->opts->max_concurrency;
	inner->batch_size = info->opts->batch_size;
	return true;
}

/*
 * The inner scan of a batched join: a plain ForeignPath of baserel whose
 * keys supply their parameters (usage_batch_inner_info told about it),
 * costed for one batch of keys_per_batch keys.
 */
ForeignPath *
usage_batch_inner_path(PlannerInfo *root, RelOptInfo *baserel, List *keys,
					   UsageBatchInner *inner, double keys_per_batch)
{
	UsagePlanInfo *info = (UsagePlanInfo *) baserel->fdw_private;
	double		calls = keys_per_batch * inner->fanout;
	Cost		startup;
	Cost		total;
	ForeignPath *path;

	usage_cost_calls(calls, inner->call_rows, inner->pages,
					 inner->max_concurrency, &startup, &total);
	path = usage_compat_foreignscan_path(root, baserel,
										 clamp_row_est(calls * inner->call_rows *
													   info->local_sel),
										 false, startup, total, NULL);
	path->fdw_private = keys;
	return path;
}

/* Is the plan state a scan of ours that takes nkeys keys from a batch? */
bool
usage_is_batch_scan(PlanState *ps, int nkeys)
{
	ForeignScanState *node = (ForeignScanState *) ps;
	UsageScanState *st;

	if (ps == NULL || !IsA(ps, ForeignScanState) || node->fdwroutine == NULL ||
		node->fdwroutine->BeginForeignScan != usageBeginForeignScan)
		return false;
	st = (UsageScanState *) node->fdw_state;
	return st != NULL && st->batch != NULL && st->batch->nkeys == nkeys;
}

/*
 * The key tuples of the next (re)scan: ntuples * nkeys values, distinct
 * and none NULL, owned by the caller until the scan has read them.
 */
void
usage_batch_set_keys(PlanState *ps, int ntuples, Datum *values)
{
	UsageScanState *st = (UsageScanState *) ((ForeignScanState *) ps)->fdw_state;

	st->batch->ntuples = ntuples;
	st->batch->values = values;
}

/* The key tuple whose request the row returned last came from. */
int
usage_batch_row_tuple(PlanState *ps)
{
	UsageScanState *st = (UsageScanState *) ((ForeignScanState *) ps)->fdw_state;

	return st->filling ? st->filling->tuple : -1;
}

/* The requests (calls, not counting pages and retries) of this scan. */
int
usage_batch_calls(PlanState *ps)
{
	UsageScanState *st = (UsageScanState *) ((ForeignScanState *) ps)->fdw_state;

	return st->started ? st->ncalls : 0;
}
