"""Grafana dashboards as code (grafana-foundation-sdk): ``panels`` declares them, ``generate`` builds them."""

__all__: list[str] = []
