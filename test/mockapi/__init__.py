"""Mock vendor usage APIs for the usage_fdw tests and demo (test/MOCK.md).

One HTTP(S) server that behaves like the two upstream APIs usage_fdw talks to:

  UiPath (lease usage API)
    POST /identity_/connect/token                                     OAuth2 client credentials
    POST /lease_/api/usage/{org}/tenants/consumption-by-folder        JSON body, {"items": [...]}
    POST /lease_/api/usage/{org}/tenants/daily-consumption-by-service JSON body, {"items": [...]}
    POST /lease_/api/usage/{org}/tenants/consumption-summary          JSON body, summary object
    POST /lease_/api/usage/{org}/tenants/{tenantId}/consumption-summary   JSON body, summary object
  AvePoint Graph API (EnPower)
    POST /connect/token                                               OAuth2 client credentials
    GET  /smp/powerplatform/connectionusage/cloudflows                top / nextLink paging
    GET  /smp/powerplatform/powerautomate/cloudflows/{flowId}/runs    (and launches, connections,
         /smp/powerplatform/powerapps/{appId}/launches                 Power BI active users,
         /smp/powerplatform/connections, .../environments, ...        environments: same paging)

plus an unauthenticated control interface under /_mock/ (request log, config,
fault injection, token revocation, client certificates) used by the tests
through test/mockctl.py.  Both token endpoints take a client secret or a JWT
client assertion signed with a registered certificate's key (certificate
login, RFC 7523).

Modules:
  common.py    constants, JSON helpers, Request and Resp (the values the
               vendor functions take and return), vendor-shaped errors
  datasets.py  the "test" and "demo" datasets (formulas, no sockets)
  oauth.py     token endpoint and bearer check      } pure functions:
  uipath.py    the UiPath usage endpoints           } Request (+ dataset,
  avepoint.py  the AvePoint cloudflows endpoint,    } config) -> Resp
               and the paging they all share        }
  avepoint_family.py  runs, launches, connections,  }
               active users, environments           }
  certs.py     client certificates and RS256 checks (the openssl command line)
  faults.py    fault rules: matching, and the response they make or alter
  state.py     shared state: config, request log, faults, issued tokens,
               client certificates, assertion jtis seen
  server.py    HTTP(S) transport, routing, /_mock/ control, main()

The data are computed from formulas, so the tests can predict every number;
nothing large is kept in memory (AvePoint rows are generated from their
index, up to 1,000,000 of them).  Python 3.11 standard library only.
test/mock_api.py is the entry point: `python3 test/mock_api.py --help`.
"""
