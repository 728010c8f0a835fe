"""Sample documents that `make run` ingests and `make bench` scales up.

Written with python-pptx and PyMuPDF so the repository ships no binary files:
``python -m osmose.samples DIR`` writes a security-architecture deck (speaker
notes, a table, a chart, runs of related slides), a data-platform deck and a
short PDF report into DIR. :func:`build_large_deck` makes an N-slide deck for
benchmarks from the same material.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["build_large_deck", "build_samples"]

# (section, title, bullets, notes) — realistic material with shared concepts across documents.
SECURITY_SLIDES: list[tuple[str, str, list[str], str]] = [
    ("Strategy", "Zero Trust Architecture for Acme Corp",
     ["Security programme 2025-2027", "Prepared by the Chief Information Security Officer (CISO)"],
     "Welcome everyone. This deck explains why Acme moves from perimeter security to Zero Trust."),
    ("Strategy", "Why the perimeter no longer holds",
     ["Remote work moved users outside the corporate network",
      "SaaS applications such as Microsoft 365 and Salesforce live outside the data centre",
      "Attackers use stolen credentials and move laterally once inside"],
     "The 2024 incident started with a phished VPN password and lateral movement to the file servers."),
    ("Strategy", "Zero Trust principles",
     ["Verify explicitly: authenticate and authorise every request",
      "Use least privilege access with just-in-time elevation",
      "Assume breach: segment networks and encrypt traffic end to end"],
     "These three principles follow NIST SP 800-207."),
    ("Identity", "Identity and Access Management (IAM)",
     ["Single Sign-On (SSO) with Azure Active Directory",
      "Multi-Factor Authentication (MFA) for every employee and contractor",
      "Privileged Access Management (PAM) for administrators"],
     "MFA alone blocks most credential stuffing attacks. PAM covers the 140 domain administrators."),
    ("Identity", "Conditional access policies",
     ["Device compliance checked by Microsoft Intune before access",
      "Risk-based sign-in policies block impossible travel",
      "Session lifetime of 8 hours for managed devices"],
     "Conditional access is where identity and device posture meet."),
    ("Network", "Zero Trust Network Access (ZTNA)",
     ["ZTNA replaces the legacy VPN for private applications",
      "Every application is published through an identity-aware proxy",
      "Micro-segmentation limits lateral movement between workloads"],
     "Pilot with the finance team in Q1; the VPN concentrators are retired in Q4."),
    ("Network", "Network segmentation roadmap",
     ["Phase 1: segment production from development networks",
      "Phase 2: micro-segmentation of the SAP S/4HANA landscape",
      "Phase 3: encrypt east-west traffic with mutual TLS"],
     "SAP S/4HANA holds finance and HR data: it gets its own segment first."),
    ("Operations", "Security Operations Center (SOC)",
     ["24/7 monitoring with Microsoft Sentinel as SIEM",
      "Endpoint Detection and Response (EDR) on all laptops and servers",
      "Incident response playbooks tested every quarter"],
     "The SOC analysts triage around 300 alerts a day; automation closes half of them."),
    ("Operations", "Key Performance Indicators (KPI)",
     ["Mean time to detect (MTTD) below 30 minutes",
      "Mean time to respond (MTTR) below 4 hours",
      "MFA coverage above 99 percent"],
     "The KPI dashboard is reviewed monthly by the security steering committee."),
    ("Operations", "Budget and timeline",
     ["Total budget: 4.2 million EUR over three years",
      "Identity workstream first, network second, operations continuous"],
     "Budget approval is requested from the board in the March meeting."),
]

DATA_SLIDES: list[tuple[str, str, list[str], str]] = [
    ("Platform", "Modern Data Platform on Azure",
     ["Lakehouse architecture with Azure Data Lake Storage",
      "Databricks for data engineering and machine learning",
      "Power BI for self-service analytics"],
     "This deck is the target architecture agreed with the data governance board."),
    ("Platform", "Ingestion and integration",
     ["Azure Data Factory pipelines load SAP S/4HANA finance data nightly",
      "Change data capture from SQL Server 2019 operational databases",
      "Event streaming with Apache Kafka for real-time use cases"],
     "Kafka topics are partitioned by business unit."),
    ("Governance", "Data governance and security",
     ["Microsoft Purview catalogues every dataset and its lineage",
      "Role-Based Access Control (RBAC) with Azure Active Directory groups",
      "Personal data is masked to comply with the General Data Protection Regulation (GDPR)"],
     "GDPR requests are handled within 30 days by the data protection officer."),
    ("Governance", "Zero Trust for data",
     ["Every query is authenticated with Single Sign-On (SSO)",
      "Least privilege access to the lakehouse through RBAC",
      "Encryption at rest and in transit with customer-managed keys"],
     "The security team's Zero Trust programme covers the data platform too."),
    ("Roadmap", "Roadmap and team",
     ["Quarter 1: finance data products", "Quarter 2: supply chain analytics",
      "Data engineers, analytics engineers and a product owner per domain"],
     "Each domain team owns its data products end to end."),
]


def _deck(path: Path, slides: list[tuple[str, str, list[str], str]], *, title: str,
          table: tuple[str, list[list[str]]] | None = None,
          chart: tuple[str, list[str], dict[str, list[float]]] | None = None) -> Path:
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    prs = Presentation()
    prs.core_properties.title = title
    for _section, slide_title, bullets, notes in slides:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = slide_title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for bullet in bullets[1:]:
            body.add_paragraph().text = bullet
        slide.notes_slide.notes_text_frame.text = notes
    if table:
        slide = prs.slides.add_slide(prs.slide_layouts[5])
        slide.shapes.title.text = table[0]
        rows = table[1]
        shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(0.5), Inches(1.5), Inches(9), Inches(3))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                shape.table.cell(r, c).text = value
    if chart:
        slide = prs.slides.add_slide(prs.slide_layouts[5])
        slide.shapes.title.text = chart[0]
        data = CategoryChartData()
        data.categories = chart[1]
        for name, values in chart[2].items():
            data.add_series(name, values)
        slide.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(1.5), Inches(8), Inches(5), data)
    path.parent.mkdir(parents=True, exist_ok=True)
    prs.save(str(path))
    return path


def _pdf_report(path: Path) -> Path:
    import pymupdf

    pages = [
        ("Quarterly Security Report", "Acme Corp completed the first phase of its Zero Trust programme. "
         "Multi-Factor Authentication (MFA) now covers 97 percent of employees. The Security Operations "
         "Center (SOC) reduced the mean time to detect incidents to 42 minutes."),
        ("Findings", "Two phishing campaigns targeted the finance department. Conditional access policies "
         "blocked sign-ins from unmanaged devices. Zero Trust Network Access (ZTNA) replaced the VPN for "
         "the finance team; the legacy VPN concentrators will be retired next year."),
        ("Next steps", "Extend micro-segmentation to the SAP S/4HANA landscape, finish Privileged Access "
         "Management (PAM) for administrators and report KPI progress to the steering committee."),
    ]
    doc = pymupdf.open()
    for heading, text in pages:
        page = doc.new_page()
        page.insert_text((72, 90), heading, fontsize=20)
        page.insert_textbox(pymupdf.Rect(72, 120, 520, 700), text, fontsize=11)
    doc.set_metadata({"title": "Quarterly Security Report"})
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
    doc.close()
    return path


def build_samples(out: Path) -> list[Path]:
    return [
        _deck(out / "zero-trust-programme.pptx", SECURITY_SLIDES, title="Zero Trust Architecture for Acme Corp",
              table=("Workstreams and owners", [["Workstream", "Owner", "Quarter"],
                                                 ["Identity and Access Management", "IAM team", "Q1"],
                                                 ["Zero Trust Network Access", "Network team", "Q2"],
                                                 ["Security Operations Center", "SOC", "Q3"]]),
              chart=("Alerts per month", ["Jan", "Feb", "Mar", "Apr"],
                     {"Alerts": [9100.0, 8700.0, 7900.0, 7200.0], "Automated": [3100.0, 3600.0, 4100.0, 4500.0]})),
        _deck(out / "modern-data-platform.pptx", DATA_SLIDES, title="Modern Data Platform on Azure"),
        _pdf_report(out / "quarterly-security-report.pdf"),
    ]


def build_large_deck(path: Path, slides: int = 250) -> Path:
    """An N-slide deck cycling through the sample material, each slide made distinct."""
    material = SECURITY_SLIDES + DATA_SLIDES
    expanded = []
    for i in range(slides):
        section, title, bullets, notes = material[i % len(material)]
        part = i // len(material) + 1
        expanded.append((section, f"{title} ({part})",
                         [f"{b} — item {i + 1}" for b in bullets], f"{notes} Slide {i + 1} of {slides}."))
    return _deck(path, expanded, title=f"Benchmark deck, {slides} slides")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "samples/generated")
    for written in build_samples(target):
        print(written)
