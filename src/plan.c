/*-------------------------------------------------------------------------
 *
 * plan.c
 *		  The planner side of a foreign scan: its size, its paths (plain and
 *		  parameterized), its plan; the one cost of a scan's requests; the
 *		  errors of a scan that would lack a parameter; and the planner side
 *		  of the batched join (batch.h).
 *
 * Clauses on parameter columns become request parameters (pushdown.c);
 * paths are offered only when every parameter the endpoint requires, and
 * every parameter whose echo column the query tests, is supplied, by a
 * WHERE clause, an option or, for a parameterized path, a join clause.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/sysattr.h"
#include "access/table.h"
#include "foreign/fdwapi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/rel.h"

#include "batch.h"

/* cost model: one HTTP request costs like a remote query in postgres_fdw */
#define USAGE_REQUEST_COST	100.0
/* parsing and converting one JSON item */
#define USAGE_ROW_COST		(cpu_tuple_cost * 10)
/* guess for "col = ANY($1)" when the array's size is not known at plan time */
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

/*
 * The estimated rows of the initplan that computes PARAM_EXEC parameter
 * paramid as ARRAY(SELECT ...), looked for at root's query level and the
 * levels above; -1 when it is not such a parameter.
 */
static double
array_initplan_rows(PlannerInfo *root, int paramid)
{
	for (PlannerInfo *r = root; r != NULL; r = r->parent_root)
	{
		ListCell   *lc;

		foreach(lc, r->init_plans)
		{
			SubPlan    *sp = (SubPlan *) lfirst(lc);
			Plan	   *plan;

			if (!IsA(sp, SubPlan) || sp->subLinkType != ARRAY_SUBLINK ||
				!list_member_int(sp->setParam, paramid))
				continue;
			plan = (Plan *) list_nth(root->glob->subplans, sp->plan_id - 1);
			return plan ? plan->plan_rows : -1;
		}
	}
	return -1;
}

/*
 * How many values a parameter's "= ANY (array)" gives: those of a constant
 * array (distinct, as EXPLAIN's Fan-out and the executor count them) or an
 * ARRAY[...] list, the estimate of an ARRAY(SELECT ...) subquery, or else
 * USAGE_UNKNOWN_FANOUT (a parameter of a generic plan, an expression).
 */
static double
estimate_array_values(PlannerInfo *root, Node *e)
{
	double		k = -1;

	while (IsA(e, RelabelType))
		e = (Node *) ((RelabelType *) e)->arg;
	if (IsA(e, Const) && !((Const *) e)->constisnull)
	{
		Oid			elemtype;
		Datum	   *elems;

		k = usage_distinct_elements(((Const *) e)->constvalue,
									&elemtype, &elems, NULL);
	}
	else if (IsA(e, ArrayExpr))
		k = list_length(((ArrayExpr *) e)->elements);
	else if (IsA(e, Param) && ((Param *) e)->paramkind == PARAM_EXEC)
		k = array_initplan_rows(root, ((Param *) e)->paramid);
	return k >= 0 ? k : USAGE_UNKNOWN_FANOUT;
}

static double
estimate_fanout(PlannerInfo *root, const UsageEndpoint *ep,
				UsageOptions *opts, List *conds, List *exprs)
{
	double		fanout = 1;

	for (int p = 0; p < ep->nparams; p++)
	{
		double		n = -1;
		ListCell   *lc;

		/* a bound parameter takes one value; a date range is one request */
		if (ep->params[p].kind == USAGE_KIND_TIME_RANGE ||
			usage_param_default(opts, &ep->params[p]) != NULL)
			continue;
		foreach(lc, conds)
		{
			UsageCond  *c = (UsageCond *) lfirst(lc);
			double		k = 1;

			if (c->param != p)
				continue;
			if (c->op == USAGE_OP_ANY)
				k = estimate_array_values(root,
										  (Node *) list_nth(exprs, c->expr_index));
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
			 def->kind == USAGE_KIND_TIME_RANGE ?
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
	info->cols = usage_map_columns(rel, info->opts->endpoint, false,
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
	info->base.fanout = estimate_fanout(root, info->opts->endpoint, info->opts,
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
				  estimate_fanout(root, ep, info->opts, pd.conds, pd.exprs),
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
 * The attribute numbers of the columns whose values the query does not
 * read: in neither the relation's target list (what the joins and the
 * output above the scan use; a whole-row reference uses every column) nor
 * the clauses checked at the scan.  As postgres_fdw fetches only the
 * columns in attrs_used, the scan leaves these NULL without converting them.
 */
static List *
unread_columns(RelOptInfo *baserel, List *scan_clauses)
{
	Bitmapset  *used = NULL;
	List	   *unread = NIL;
	ListCell   *lc;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &used);
	foreach(lc, scan_clauses)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &used);
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, used))
		return NIL;				/* a whole-row reference */
	for (AttrNumber a = 1; a <= baserel->max_attr; a++)
		if (!bms_is_member(a - FirstLowInvalidHeapAttributeNumber, used))
			unread = lappend(unread, makeInteger(a));
	return unread;
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
	UsageBatchKeys *batch = usage_batch_keys_from_list(batch_keys);
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
						   usage_batch_key_conds(batch, -1, USAGE_OP_EQ));
	missing = missing_param(info->opts->endpoint, info->opts, supplied,
							info->tested);
	if (missing >= 0)
		report_missing_param(info, missing);

	/* the slots of UsageScanPrivateIndex, in order */
	fdw_private = list_make4(usage_conds_to_list(pd.conds), batch_keys,
							 unsent_echo_columns(info, supplied),
							 unread_columns(baserel, scan_clauses));
	Assert(list_length(fdw_private) == USAGE_PRIVATE_NSLOTS);

	return make_foreignscan(tlist,
							extract_actual_clauses(scan_clauses, false),
							baserel->relid,
							pd.exprs,
							fdw_private,
							NIL, NIL, outer_plan);
}

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
		info->opts->endpoint->params[c->param].kind == USAGE_KIND_TIME_RANGE)
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
									usage_batch_key_conds(usage_batch_keys_from_list(keys),
													-1, USAGE_OP_EQ));

	if (missing_param(ep, info->opts, conds, info->tested) >= 0)
		return false;
	inner->call_rows = estimate_call_rows(ep, info->opts, conds);
	inner->fanout = Max(estimate_fanout(root, ep, info->opts,
										info->base.conds, info->base.exprs), 1);
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

/*
 * The planner's callbacks, for the handler (module.c).
 */
void
usage_plan_routine(FdwRoutine *routine)
{
	routine->GetForeignRelSize = usageGetForeignRelSize;
	routine->GetForeignPaths = usageGetForeignPaths;
	routine->GetForeignPlan = usageGetForeignPlan;
	routine->IsForeignPathAsyncCapable = usageIsForeignPathAsyncCapable;
}
