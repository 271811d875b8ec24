"""The bounce receiver: an SMTP server on its own port for the mail that comes back.

Delivery status notifications (inbound/dsn.py), spam complaints in the Abuse Reporting Format
(inbound/arf.py) and mail to List-Unsubscribe mailto addresses arrive at addresses of the
bounce domain that carry a signed token (inbound/addresses.py); inbound/report.py reads what a
message means, inbound/apply.py writes it to the store, inbound/server.py speaks SMTP.
"""
