/*-------------------------------------------------------------------------
 *
 * echo_check.c
 *		  Tests of an echo column that PostgreSQL evaluates above its scan.
 *
 * An echo column shows the value its request carried; when no request of
 * the scan carries the parameter, it reads NULL, and nothing is known of
 * the rows' real value.  The planner refuses a query whose clauses at the
 * scan test such a column (plan.c).  But a test may also be evaluated
 * above the scan, where the scan's planning cannot see it: above a
 * materialized CTE, an OFFSET 0 or a window subquery, in an aggregate's
 * FILTER, in a join clause over a fenced subquery, in a SubPlan's
 * comparison.  There it would silently remove rows.
 *
 * When a scan with such columns starts, this module walks the whole plan
 * tree of the statement and follows the scan's echo columns upwards
 * through every node's output (scan tuples of subquery and CTE scans,
 * OUTER_VAR and INNER_VAR references, nested-loop and SubPlan parameters)
 * and raises the documented HV000 error when one of them, or an expression
 * of one, reaches a test: a qual, a join clause, an index or TID qual, an
 * aggregate's FILTER, a SubPlan's comparison, or the conditions of a
 * foreign or custom scan.  Values that only reach the output (a plain
 * SELECT tenant, GROUP BY tenant) are not tests: they show NULL, as
 * documented.
 *
 * Copyright (c) 2026, usage_fdw developers.  PostgreSQL License (see LICENSE).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "utils/lsyscache.h"

#include "usage_fdw.h"

/*
 * The columns of one plan node's output (or scan tuple): per column, the
 * attribute number of the echo column it derives from, or 0.
 */
typedef struct Taint
{
	int			n;
	int		   *attno;
} Taint;

/* The scan tuple of one scan node, by its range table index. */
typedef struct ScanTaint
{
	Index		varno;
	Taint		taint;
} ScanTaint;

typedef struct EchoCheck
{
	PlannedStmt *stmt;
	Index		scanrelid;		/* the scan whose echo columns are followed */
	Bitmapset  *unsent;			/* its echo columns no request carries */
	Oid			relid;
	const char *table_name;
	List	   *scans;			/* ScanTaint *, of the scans walked so far */
	int			nparams;
	int		   *params;			/* per PARAM_EXEC id: taint */
	Taint	   *subplans;		/* per plan id - 1: output taint, once walked */
	bool	   *walked;
} EchoCheck;

/* What the expressions of one node refer to. */
typedef struct ExprCtx
{
	EchoCheck  *cx;
	Taint		outer;			/* OUTER_VAR */
	Taint		inner;			/* INNER_VAR */
	List	   *index_tlist;	/* INDEX_VAR: a scan tuple of expressions */
} ExprCtx;

static Taint walk_plan(EchoCheck *cx, Plan *plan);
static int	expr_taint(ExprCtx *ec, Node *node);

/*
 * The error: a test of echo column attno evaluated above the scan.
 */
USAGE_NORETURN static void
report_test_above(EchoCheck *cx, int attno)
{
	char	   *colname = get_attname(cx->relid, (AttrNumber) attno, false);

	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("a query on foreign table %s tests column \"%s\" above the scan, where its requests do not carry that parameter",
					cx->table_name, colname),
			 errdetail("Column \"%s\" echoes a request parameter; no request of this scan carries it, so it reads NULL (or the API's default) and the rows of other values were never asked for, yet PostgreSQL evaluates a test of it above the scan (beyond a materialized CTE, OFFSET 0 or window subquery, in an aggregate's FILTER, or in a join or subquery comparison).",
					   colname),
			 errhint("Filter %s with = or IN in the query level that reads the foreign table, or bind it with a table option.",
					 colname)));
}

/* The taint of an expression that a test evaluates: an error if any. */
static void
check_test(ExprCtx *ec, Node *node)
{
	int			attno = expr_taint(ec, node);

	if (attno > 0)
		report_test_above(ec->cx, attno);
}

static void
check_tests(ExprCtx *ec, List *exprs)
{
	ListCell   *lc;

	foreach(lc, exprs)
		check_test(ec, (Node *) lfirst(lc));
}

/* Column attno (1-based) of a taint, 0 when outside it. */
static int
taint_at(Taint t, int attno)
{
	if (attno < 1 || attno > t.n)
		return 0;
	return t.attno[attno - 1];
}

/* The first tainted column of a taint (a whole-row reference), or 0. */
static int
taint_any(Taint t)
{
	for (int i = 0; i < t.n; i++)
	{
		if (t.attno[i] > 0)
			return t.attno[i];
	}
	return 0;
}

/* The taint of the scan tuple of varno, or an empty one. */
static Taint
scan_taint(EchoCheck *cx, Index varno)
{
	ListCell   *lc;
	Taint		none = {0, NULL};

	foreach(lc, cx->scans)
	{
		ScanTaint  *st = (ScanTaint *) lfirst(lc);

		if (st->varno == varno)
			return st->taint;
	}
	return none;
}

static void
register_scan(EchoCheck *cx, Index varno, Taint taint)
{
	ScanTaint  *st = palloc(sizeof(ScanTaint));

	st->varno = varno;
	st->taint = taint;
	cx->scans = lappend(cx->scans, st);
}

/* The taint of a Var, by where it points. */
static int
var_taint(ExprCtx *ec, Var *var)
{
	Taint		t;

	if (var->varlevelsup != 0)
		return 0;
	if (var->varno == OUTER_VAR)
		t = ec->outer;
	else if (var->varno == INNER_VAR)
		t = ec->inner;
	else if (var->varno == INDEX_VAR)
	{
		TargetEntry *tle;

		if (var->varattno < 1 || var->varattno > list_length(ec->index_tlist))
			return 0;
		tle = list_nth_node(TargetEntry, ec->index_tlist, var->varattno - 1);
		return expr_taint(ec, (Node *) tle->expr);
	}
	else if (IS_SPECIAL_VARNO(var->varno))
		return 0;
	else
		t = scan_taint(ec->cx, var->varno);
	return var->varattno == 0 ? taint_any(t) : taint_at(t, var->varattno);
}

/* Set the taint of a PARAM_EXEC parameter. */
static void
set_param(EchoCheck *cx, int paramid, int attno)
{
	if (paramid >= 0 && paramid < cx->nparams && attno > 0)
		cx->params[paramid] = attno;
}

/*
 * The output of a subplan: walked once, or again when its parameters from
 * the outer query carry a taint (the walk then sees them).
 */
static Taint
subplan_taint(EchoCheck *cx, int plan_id, bool fresh)
{
	int			i = plan_id - 1;

	if (i < 0 || i >= list_length(cx->stmt->subplans))
	{
		Taint		none = {0, NULL};

		return none;
	}
	if (!cx->walked[i] || fresh)
	{
		cx->walked[i] = true;
		cx->subplans[i] = walk_plan(cx, (Plan *) list_nth(cx->stmt->subplans, i));
	}
	return cx->subplans[i];
}

/*
 * A SubPlan: its arguments pass outer values in as parameters, its output
 * columns reach the comparison (testexpr) as parameters, which is a test.
 * Returns the taint of its value (an EXPR or ARRAY sublink's first
 * column).
 */
static int
sublink_taint(ExprCtx *ec, SubPlan *sp)
{
	EchoCheck  *cx = ec->cx;
	bool		fresh = false;
	ListCell   *lp,
			   *la;
	Taint		out;
	int			i = 0;

	forboth(lp, sp->parParam, la, sp->args)
	{
		int			attno = expr_taint(ec, (Node *) lfirst(la));

		if (attno > 0)
		{
			set_param(cx, lfirst_int(lp), attno);
			fresh = true;
		}
	}
	out = subplan_taint(cx, sp->plan_id, fresh);
	foreach(lp, sp->paramIds)
		set_param(cx, lfirst_int(lp), taint_at(out, ++i));
	if (sp->testexpr)
		check_test(ec, sp->testexpr);
	if (sp->subLinkType == EXPR_SUBLINK || sp->subLinkType == ARRAY_SUBLINK)
		return taint_at(out, 1);
	return 0;
}

/* The state of expr_taint's walk: where it is, and what it found. */
typedef struct TaintWalk
{
	ExprCtx    *ec;
	int			found;
} TaintWalk;

/* expression_tree_walker callback of expr_taint: stops at the first taint */
static bool
expr_taint_walker(Node *node, TaintWalk *tw)
{
	ExprCtx    *ec = tw->ec;

	if (node == NULL)
		return false;
	if (IsA(node, Var))
		tw->found = var_taint(ec, (Var *) node);
	else if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
	{
		int			id = ((Param *) node)->paramid;

		tw->found = (id >= 0 && id < ec->cx->nparams) ? ec->cx->params[id] : 0;
	}
	else if (IsA(node, SubPlan))
		tw->found = sublink_taint(ec, (SubPlan *) node);
	else
	{
		if (IsA(node, Aggref) && ((Aggref *) node)->aggfilter)
			check_test(ec, (Node *) ((Aggref *) node)->aggfilter);
		if (IsA(node, WindowFunc) && ((WindowFunc *) node)->aggfilter)
			check_test(ec, (Node *) ((WindowFunc *) node)->aggfilter);
		return expression_tree_walker(node, expr_taint_walker, (void *) tw);
	}
	return tw->found > 0;
}

/*
 * The echo column an expression derives from (its first), or 0.  Tests
 * inside it (FILTER, SubPlan comparisons) are checked on the way.
 */
static int
expr_taint(ExprCtx *ec, Node *node)
{
	TaintWalk	tw;

	tw.ec = ec;
	tw.found = 0;
	(void) expr_taint_walker(node, &tw);
	return tw.found;
}

/* The taint of a target list, column by column. */
static Taint
tlist_taint(ExprCtx *ec, List *tlist)
{
	Taint		t;
	ListCell   *lc;
	int			i = 0;

	t.n = list_length(tlist);
	t.attno = palloc0(sizeof(int) * Max(t.n, 1));
	foreach(lc, tlist)
		t.attno[i++] = expr_taint(ec, (Node *) lfirst_node(TargetEntry, lc)->expr);
	return t;
}

/* Column by column, the first taint of either (a union of inputs). */
static Taint
taint_union(Taint a, Taint b)
{
	Taint		t;

	t.n = Max(a.n, b.n);
	t.attno = palloc0(sizeof(int) * Max(t.n, 1));
	for (int i = 0; i < t.n; i++)
		t.attno[i] = taint_at(a, i + 1) ? taint_at(a, i + 1) : taint_at(b, i + 1);
	return t;
}

/* The union of the outputs of a list of plans (Append, MergeAppend). */
static Taint
plans_taint(EchoCheck *cx, List *plans)
{
	Taint		t = {0, NULL};
	ListCell   *lc;

	foreach(lc, plans)
		t = taint_union(t, walk_plan(cx, (Plan *) lfirst(lc)));
	return t;
}

/*
 * The initPlans of a node set their output parameters before the node
 * runs: their taint comes from the subplan's output columns.
 */
static void
walk_init_plans(EchoCheck *cx, Plan *plan)
{
	ListCell   *lc;

	foreach(lc, plan->initPlan)
	{
		SubPlan    *sp = lfirst_node(SubPlan, lc);
		Taint		out = subplan_taint(cx, sp->plan_id, false);
		ListCell   *lp;
		int			i = 0;

		foreach(lp, sp->setParam)
			set_param(cx, lfirst_int(lp), taint_at(out, ++i));
	}
}

/*
 * Walk the inputs of a node: fill ec's outer, inner and index target list,
 * and register the scan tuples that the node's expressions read.
 */
static void
walk_inputs(EchoCheck *cx, Plan *plan, ExprCtx *ec)
{
	Index		scanrelid = 0;

	switch (nodeTag(plan))
	{
		case T_Append:
			ec->outer = plans_taint(cx, ((Append *) plan)->appendplans);
			return;
		case T_MergeAppend:
			ec->outer = plans_taint(cx, ((MergeAppend *) plan)->mergeplans);
			return;
		case T_BitmapAnd:
			(void) plans_taint(cx, ((BitmapAnd *) plan)->bitmapplans);
			return;
		case T_BitmapOr:
			(void) plans_taint(cx, ((BitmapOr *) plan)->bitmapplans);
			return;
		case T_SubqueryScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			register_scan(cx, scanrelid,
						  walk_plan(cx, ((SubqueryScan *) plan)->subplan));
			return;
		case T_CteScan:
			scanrelid = ((Scan *) plan)->scanrelid;
			register_scan(cx, scanrelid,
						  subplan_taint(cx, ((CteScan *) plan)->ctePlanId, false));
			return;
		case T_CustomScan:
			(void) plans_taint(cx, ((CustomScan *) plan)->custom_plans);
			ec->index_tlist = ((CustomScan *) plan)->custom_scan_tlist;
			break;
		case T_ForeignScan:
			ec->index_tlist = ((ForeignScan *) plan)->fdw_scan_tlist;
			break;
		case T_IndexOnlyScan:
			ec->index_tlist = ((IndexOnlyScan *) plan)->indextlist;
			break;
		default:
			break;
	}
	if (plan->lefttree)
		ec->outer = walk_plan(cx, plan->lefttree);
	if (IsA(plan, NestLoop))
	{
		ListCell   *lc;

		foreach(lc, ((NestLoop *) plan)->nestParams)
		{
			NestLoopParam *nlp = (NestLoopParam *) lfirst(lc);

			set_param(cx, nlp->paramno, expr_taint(ec, (Node *) nlp->paramval));
		}
	}
	if (plan->righttree)
		ec->inner = walk_plan(cx, plan->righttree);
	/* the two inputs of a set operation or recursive union both feed it */
	if (IsA(plan, RecursiveUnion) || IsA(plan, SetOp))
		ec->outer = taint_union(ec->outer, ec->inner);
}

/* The tests a node evaluates besides plan->qual, by its type. */
static void
check_node_tests(Plan *plan, ExprCtx *ec)
{
	switch (nodeTag(plan))
	{
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
			check_tests(ec, ((Join *) plan)->joinqual);
			if (IsA(plan, MergeJoin))
				check_tests(ec, ((MergeJoin *) plan)->mergeclauses);
			if (IsA(plan, HashJoin))
				check_tests(ec, ((HashJoin *) plan)->hashclauses);
			break;
		case T_IndexScan:
			check_tests(ec, ((IndexScan *) plan)->indexqualorig);
			break;
		case T_IndexOnlyScan:
			check_tests(ec, ((IndexOnlyScan *) plan)->indexqual);
			break;
		case T_BitmapIndexScan:
			check_tests(ec, ((BitmapIndexScan *) plan)->indexqualorig);
			break;
		case T_BitmapHeapScan:
			check_tests(ec, ((BitmapHeapScan *) plan)->bitmapqualorig);
			break;
		case T_TidScan:
			check_tests(ec, ((TidScan *) plan)->tidquals);
			break;
		case T_TidRangeScan:
			check_tests(ec, ((TidRangeScan *) plan)->tidrangequals);
			break;
		case T_Result:
			check_test(ec, ((Result *) plan)->resconstantqual);
			break;
		case T_ForeignScan:
			check_tests(ec, ((ForeignScan *) plan)->fdw_exprs);
			check_tests(ec, ((ForeignScan *) plan)->fdw_recheck_quals);
			break;
		case T_CustomScan:
			check_tests(ec, ((CustomScan *) plan)->custom_exprs);
			break;
		default:
			break;
	}
}

/*
 * Walk one plan node: its initPlans, inputs, tests, and the taint of its
 * output.
 */
static Taint
walk_plan(EchoCheck *cx, Plan *plan)
{
	ExprCtx		ec;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	memset(&ec, 0, sizeof(ec));
	ec.cx = cx;
	if (plan == NULL)
		return ec.outer;
	walk_init_plans(cx, plan);
	walk_inputs(cx, plan, &ec);
	check_tests(&ec, plan->qual);
	check_node_tests(plan, &ec);
	return tlist_taint(&ec, plan->targetlist);
}

/*
 * Check the statement's plan for tests of the scan's echo columns that no
 * request carries (unsent, attribute numbers) evaluated above the scan;
 * raise the documented error at the first.  scanrelid is the scan's range
 * table index in the statement.
 */
void
usage_check_echo_tests(PlannedStmt *stmt, Index scanrelid, Bitmapset *unsent,
					   Oid relid, const char *table_name)
{
	EchoCheck	cx;
	Taint		self;
	int			nsub = list_length(stmt->subplans);
	int			natts = 0;
	int			attno = -1;

	if (bms_is_empty(unsent))
		return;
	memset(&cx, 0, sizeof(cx));
	cx.stmt = stmt;
	cx.scanrelid = scanrelid;
	cx.unsent = unsent;
	cx.relid = relid;
	cx.table_name = table_name;
	cx.nparams = list_length(stmt->paramExecTypes);
	cx.params = palloc0(sizeof(int) * Max(cx.nparams, 1));
	cx.subplans = palloc0(sizeof(Taint) * Max(nsub, 1));
	cx.walked = palloc0(sizeof(bool) * Max(nsub, 1));

	/* the scan's own tuple: its unsent echo columns */
	while ((attno = bms_next_member(unsent, attno)) >= 0)
		natts = Max(natts, attno);
	self.n = natts;
	self.attno = palloc0(sizeof(int) * Max(natts, 1));
	attno = -1;
	while ((attno = bms_next_member(unsent, attno)) >= 0)
		self.attno[attno - 1] = attno;
	register_scan(&cx, scanrelid, self);

	(void) walk_plan(&cx, stmt->planTree);
	for (int i = 0; i < nsub; i++)
	{
		if (!cx.walked[i])
			(void) subplan_taint(&cx, i + 1, false);
	}
}
