"""The report: one self-contained HTML file (or its data as JSON) from a plan, its inventory and a run journal.

    from migrate.report.data import build_report
    from migrate.report.html import write_report
    report = build_report("plan.yaml", inventory="inventory.json", flows="flows.csv", journal="run.db")
    write_report(report, "report.html")

Data assembly (`data`, `run_data`, `layout`) is provider-free; rendering is `html` and `svg`. This
package module imports only the data model, so `migrate schema report` stays fast.
"""

from migrate.report.model import REPORT_VERSION, Report

__all__ = ["REPORT_VERSION", "Report"]
