"""A realistic MySQL/MariaDB shop database, full of the type traps a migration meets.

`load_shop(url, rows)` creates the tables below in the (empty) MariaDB database of `url` and
fills them deterministically (a seeded generator; parents before children), returning the row
count of each table. `rows` is the number of customers; the other tables scale with it (the
default gives about 2,000 rows in all).

Tables (parents first, as `SHOP_TABLES` lists them), and the traps each holds:

* ``categories``: a self-referencing tree (FK to itself, ON DELETE SET NULL), SMALLINT
  UNSIGNED AUTO_INCREMENT key, unique slug, names with accents and emoji.
* ``customers``: INT UNSIGNED AUTO_INCREMENT; a utf8mb4 name with emoji and a latin1 column
  with accented characters; TINYINT(1) and BIT(1) flags; ENUM labels with a comma and with
  quotes; SET (and the empty set); JSON (objects, the JSON literal null, a JSON string);
  DATE with zero dates ('0000-00-00'), partial zero dates ('2020-00-15') and a real old date
  ('0009-12-04'); YEAR (1901, 2155, and the zero year 0000); DATETIME(6) beside TIMESTAMP(3)
  (1970-01-01 00:00:01 and 2038-01-19 03:14:07.999, its limits) and a DATETIME holding
  '0000-00-00 00:00:00'; defaults, comments, a unique and a prefix index.
* ``addresses``: POINT (NOT NULL, SPATIAL index), a composite index, texts with commas and
  quotes, CHAR(10) (trailing spaces dropped by the server).
* ``products``: BIGINT UNSIGNED above int8 (18446744073709551615, 9223372036854775808);
  DECIMAL(65,30) with 35 + 30 digits; FLOAT (6 significant digits at most: MariaDB sends FLOAT
  rounded to 6) and DOUBLE (1e-300, 1/3); BINARY(8) (zero padded), BLOB with NUL bytes and an
  empty one; BIT(8), BIT(50); YEAR; TINYINT(1); JSON with big integers and unicode; a DATE
  with zero dates and 9999-12-31; a composite index; a FULLTEXT index.
* ``product_categories``: composite primary key (product_id, category_id), two FKs.
* ``orders``: BIGINT UNSIGNED key; ENUM with a comma; DATETIME(3) and TIMESTAMP(6) NULL; a
  composite index (customer_id, placed_at).
* ``order_items``: composite primary key (order_id, line_no), DECIMAL(5,4) discounts.
* ``payments``: zero and partial zero dates, VARBINARY, JSON, TINYINT(1).
* ``shipments``: nullable unique tracking number, MEDIUMINT UNSIGNED, TIME, zero DATETIMEs.
* ``reviews``: unique (product_id, customer_id), MEDIUMTEXT with emoji and newlines.
* ``inventory_events``: no primary key, only a unique key (event_uuid); ENUM labels with a
  comma and quotes; signed deltas.
* ``audit_log``: no key and no index at all, and rows that are exact duplicates.
* ``Order Notes`` (`NOTES_TABLE`): a table name with a space and capitals, columns named
  ``Order`` and ``select`` (reserved words) and ``Note Text``, ``CreatedAt``.
* `LONG_TABLE` (64 characters: MariaDB's limit, one more byte than PostgreSQL's 63).

And a view, ``v_order_totals`` (`SHOP_VIEWS`).

The loader's session sets `sql_mode = ''` (no STRICT, no NO_ZERO_DATE / NO_ZERO_IN_DATE, which
would refuse the zero dates) and `time_zone = '+00:00'` (TIMESTAMP values are given in UTC).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy

__all__ = [
    "LONG_TABLE",
    "NOTES_TABLE",
    "SHOP_DDL",
    "SHOP_TABLES",
    "SHOP_VIEWS",
    "load_shop",
]

NOTES_TABLE = "Order Notes"
LONG_TABLE = "customer_marketing_preferences_history_kept_for_compliance_audit"
assert len(LONG_TABLE) == 64

#: Every table, parents before children.
SHOP_TABLES: tuple[str, ...] = (
    "categories",
    "customers",
    "addresses",
    "products",
    "product_categories",
    "orders",
    "order_items",
    "payments",
    "shipments",
    "reviews",
    "inventory_events",
    "audit_log",
    NOTES_TABLE,
    LONG_TABLE,
)
SHOP_VIEWS: tuple[str, ...] = ("v_order_totals",)

_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"

#: The DDL, in creation order (MariaDB dialect).
SHOP_DDL: tuple[str, ...] = (
    f"""CREATE TABLE categories (
  id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT,
  parent_id SMALLINT UNSIGNED NULL COMMENT 'NULL for a top-level category',
  name VARCHAR(80) NOT NULL,
  slug VARCHAR(80) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_categories_slug (slug),
  KEY ix_categories_parent (parent_id),
  CONSTRAINT fk_categories_parent FOREIGN KEY (parent_id) REFERENCES categories (id)
    ON DELETE SET NULL
) {_TABLE_OPTIONS} COMMENT='product categories, a tree'""",
    f"""CREATE TABLE customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  email VARCHAR(191) NOT NULL,
  full_name VARCHAR(120) NOT NULL COMMENT 'utf8mb4: emoji welcome',
  legacy_name VARCHAR(120) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL
    COMMENT 'from the old latin1 system',
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  newsletter BIT(1) NOT NULL DEFAULT b'0',
  tier ENUM('basic', 'gold, premium', 'it''s "vip"') NOT NULL DEFAULT 'basic',
  interests SET('books', 'music', 'games', 'garden') NOT NULL DEFAULT '',
  preferences JSON NULL,
  birth_date DATE NULL COMMENT 'zero dates from the old system',
  signup_year YEAR NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at TIMESTAMP(3) NULL DEFAULT NULL,
  last_login DATETIME NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_customers_email (email),
  KEY ix_customers_name (full_name(20))
) {_TABLE_OPTIONS} COMMENT='people who buy'""",
    f"""CREATE TABLE addresses (
  id BIGINT NOT NULL AUTO_INCREMENT,
  customer_id INT UNSIGNED NOT NULL,
  kind ENUM('billing', 'shipping') NOT NULL DEFAULT 'shipping',
  line1 VARCHAR(200) NOT NULL,
  city VARCHAR(100) NOT NULL,
  postcode CHAR(10) NOT NULL,
  country CHAR(2) NOT NULL DEFAULT 'FR',
  location POINT NOT NULL,
  is_default TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  KEY ix_addresses_customer_kind (customer_id, kind),
  SPATIAL INDEX sx_addresses_location (location),
  CONSTRAINT fk_addresses_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
    ON DELETE CASCADE
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE products (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  sku CHAR(12) NOT NULL,
  name VARCHAR(200) NOT NULL,
  description TEXT NULL,
  price DECIMAL(10,2) NOT NULL DEFAULT 0.00,
  cost DECIMAL(65,30) NULL COMMENT 'exact to 30 places',
  weight_kg FLOAT NULL,
  rating DOUBLE NULL,
  stock_units BIGINT UNSIGNED NOT NULL DEFAULT 0,
  barcode BINARY(8) NULL,
  thumbnail BLOB NULL,
  flags BIT(8) NOT NULL DEFAULT b'00000000',
  feature_mask BIT(50) NULL,
  launch_year YEAR NULL,
  is_digital TINYINT(1) NOT NULL DEFAULT 0,
  attributes JSON NULL,
  discontinued_on DATE NULL,
  created_at TIMESTAMP(6) NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_products_sku (sku),
  KEY ix_products_year_price (launch_year, price),
  FULLTEXT KEY ft_products_name (name)
) {_TABLE_OPTIONS} COMMENT='what the shop sells'""",
    f"""CREATE TABLE product_categories (
  product_id INT UNSIGNED NOT NULL,
  category_id SMALLINT UNSIGNED NOT NULL,
  position TINYINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (product_id, category_id),
  KEY ix_product_categories_category (category_id),
  CONSTRAINT fk_pc_product FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE,
  CONSTRAINT fk_pc_category FOREIGN KEY (category_id) REFERENCES categories (id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  customer_id INT UNSIGNED NOT NULL,
  shipping_address_id BIGINT NULL,
  status ENUM('new', 'paid', 'shipped', 'cancelled, refunded') NOT NULL DEFAULT 'new',
  placed_at DATETIME(3) NOT NULL,
  paid_at TIMESTAMP(6) NULL DEFAULT NULL,
  total DECIMAL(12,2) NOT NULL DEFAULT 0.00,
  currency CHAR(3) NOT NULL DEFAULT 'EUR',
  notes TEXT NULL,
  PRIMARY KEY (id),
  KEY ix_orders_customer_placed (customer_id, placed_at),
  KEY ix_orders_status (status),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT fk_orders_address FOREIGN KEY (shipping_address_id) REFERENCES addresses (id)
    ON DELETE SET NULL
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE order_items (
  order_id BIGINT UNSIGNED NOT NULL,
  line_no SMALLINT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  quantity INT UNSIGNED NOT NULL DEFAULT 1,
  unit_price DECIMAL(10,2) NOT NULL,
  discount DECIMAL(5,4) NOT NULL DEFAULT 0.0000,
  PRIMARY KEY (order_id, line_no),
  KEY ix_order_items_product (product_id),
  CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
  CONSTRAINT fk_items_product FOREIGN KEY (product_id) REFERENCES products (id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE payments (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  order_id BIGINT UNSIGNED NOT NULL,
  method ENUM('card', 'transfer', 'cash') NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  paid_on DATE NULL,
  provider_ref VARBINARY(16) NULL,
  raw_response JSON NULL,
  captured TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  KEY ix_payments_order (order_id),
  CONSTRAINT fk_payments_order FOREIGN KEY (order_id) REFERENCES orders (id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE shipments (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  order_id BIGINT UNSIGNED NOT NULL,
  carrier VARCHAR(40) NOT NULL,
  tracking VARCHAR(64) NULL,
  shipped_at DATETIME NULL,
  delivered_at DATETIME NULL,
  weight_g MEDIUMINT UNSIGNED NULL,
  delivery_window TIME NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_shipments_tracking (tracking),
  CONSTRAINT fk_shipments_order FOREIGN KEY (order_id) REFERENCES orders (id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE reviews (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  product_id INT UNSIGNED NOT NULL,
  customer_id INT UNSIGNED NOT NULL,
  stars TINYINT UNSIGNED NOT NULL,
  title VARCHAR(200) NOT NULL DEFAULT '',
  body MEDIUMTEXT NULL,
  created_at TIMESTAMP NULL DEFAULT NULL,
  helpful_votes INT NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY uq_reviews_product_customer (product_id, customer_id),
  CONSTRAINT fk_reviews_product FOREIGN KEY (product_id) REFERENCES products (id),
  CONSTRAINT fk_reviews_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE inventory_events (
  event_uuid CHAR(36) NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  delta INT NOT NULL,
  reason ENUM('restock', 'sale', 'return, damaged', 'count "audit"') NOT NULL,
  happened_at DATETIME(6) NOT NULL,
  UNIQUE KEY uq_inventory_events_uuid (event_uuid),
  KEY ix_inventory_events_product (product_id, happened_at),
  CONSTRAINT fk_inventory_product FOREIGN KEY (product_id) REFERENCES products (id)
) {_TABLE_OPTIONS} COMMENT='no primary key, a unique key only'""",
    f"""CREATE TABLE audit_log (
  at DATETIME NOT NULL,
  actor VARCHAR(64) NOT NULL,
  action VARCHAR(32) NOT NULL,
  details JSON NULL,
  payload VARBINARY(64) NULL
) {_TABLE_OPTIONS} COMMENT='no key at all; duplicate rows happen'""",
    f"""CREATE TABLE `{NOTES_TABLE}` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `Order` BIGINT UNSIGNED NOT NULL,
  `select` VARCHAR(30) NOT NULL DEFAULT 'all',
  `Note Text` TEXT NULL,
  `CreatedAt` DATETIME NOT NULL,
  PRIMARY KEY (`id`),
  KEY `ix Order` (`Order`),
  CONSTRAINT `fk order notes` FOREIGN KEY (`Order`) REFERENCES orders (id) ON DELETE CASCADE
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE `{LONG_TABLE}` (
  customer_id INT UNSIGNED NOT NULL,
  channel ENUM('email', 'sms', 'post') NOT NULL,
  opted_in TINYINT(1) NOT NULL,
  changed_at DATETIME NOT NULL,
  PRIMARY KEY (customer_id, channel),
  CONSTRAINT fk_long_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) {_TABLE_OPTIONS}""",
    """CREATE VIEW v_order_totals AS
SELECT o.id AS order_id, o.customer_id, COUNT(i.line_no) AS line_count,
       COALESCE(SUM(i.quantity * i.unit_price * (1 - i.discount)), 0) AS total
FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
GROUP BY o.id, o.customer_id""",
)

_FIRST = ["Zoë", "Jürgen", "Søren", "Amélie", "José", "Łukasz", "Chloé", "Björn", "Ana", "Li"]
_LAST = ["Ångström", "Müller", "O'Brien", 'Smith "Smitty"', "Nuñez", "García", "Dvořák", "Ng"]
_LATIN1 = ["Café Müller", "Crème brûlée", "Façade Ørsted", "Señor Niño", "Straße ÀÉÎÕÜ", "plain"]
_EMOJI = ["", " 😀", " 🚀", " 👩‍💻", " 🇫🇷"]
_CITIES = ["Paris", "Zürich", "København", "São Paulo", "Kraków", "Québec, QC"]
_CARRIERS = ["DHL", "La Poste", "UPS", "Fedex, Intl"]
_BASE = datetime(2021, 3, 14, 15, 9, 26, 535897)


def _parse(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError("load_shop needs a URL naming the database: mysql://user@host/db")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else "root",
        "password": unquote(parts.password) if parts.password else "",
        "database": database,
    }


def _when(rng: random.Random, days: int = 900) -> datetime:
    return _BASE + timedelta(
        seconds=rng.randrange(days * 86_400), microseconds=rng.randrange(10**6)
    )


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class _Shop:
    """The rows of every table, made by one seeded generator."""

    def __init__(self, customers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n_customers = max(6, customers)
        self.rows: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
        self.address_of: dict[int, list[int]] = {}

    def add(self, table: str, columns: str | tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """The rows of `table`; `columns` are its column names (a str: split on spaces)."""
        names = tuple(columns.split()) if isinstance(columns, str) else columns
        self.rows[table] = (names, rows)

    def build(self) -> None:
        self.categories()
        self.customers()
        self.addresses()
        self.products()
        self.product_categories()
        self.orders()
        self.payments_and_shipments()
        self.reviews()
        self.inventory_events()
        self.audit_log()
        self.notes_and_preferences()

    def categories(self) -> None:
        names = [
            (None, "Électronique"),
            (None, "Books 📚"),
            (None, "Garden & Outdoor"),
            (None, "Kids' toys"),
            (1, "Phones, tablets"),
            (1, 'Audio "hi-fi"'),
            (2, "Romans policiers"),
            (2, "Sci-fi"),
            (3, "Küche"),
            (3, "Tools"),
            (4, "Puzzles"),
            (9, "Knives"),
        ]
        rows = [
            (i, parent, name, f"cat-{i}-{name.encode('ascii', 'ignore').decode()[:20]}".lower())
            for i, (parent, name) in enumerate(names, start=1)
        ]
        self.add("categories", "id parent_id name slug", rows)

    def customers(self) -> None:
        rng = self.rng
        rows = []
        tiers = ["basic", "gold, premium", 'it\'s "vip"']
        interests = ["", "books", "music,games", "books,garden", "books,music,games,garden"]
        for i in range(1, self.n_customers + 1):
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}{rng.choice(_EMOJI)}"
            birth: Any = f"{rng.randrange(1940, 2006):04d}-{rng.randrange(1, 13):02d}-" + (
                f"{rng.randrange(1, 29):02d}"
            )
            prefs: Any = json.dumps(
                {"lang": rng.choice(["fr", "de", "en"]), "score": rng.randrange(100) / 4}
            )
            year: Any = rng.choice([None, 2019, 2020, 2021, 2024])
            updated: Any = _when(rng).replace(microsecond=rng.randrange(1000) * 1000)
            login: Any = rng.choice([None, _when(rng).replace(microsecond=0)])
            special = {
                1: ("0000-00-00", 2155, "2038-01-19 03:14:07.999", None),
                2: ("2020-00-15", 1901, "1970-01-01 00:00:01", "0000-00-00 00:00:00"),
                3: ("0009-12-04", 0, None, "0009-12-04 01:02:03"),
                4: (None, None, None, None),
                5: ("2020-01-00", 2000, updated, login),
            }
            if i in special:
                birth, year, updated, login = special[i]
            if i == 1:
                prefs = json.dumps(
                    {
                        "lang": "fr",
                        "n": 1.5,
                        "big": 123456789012345678901234567890,
                        "tags": ["a", "b,c", 'q"uote'],
                        "nested": {"x": None, "y": [True, False]},
                        "unicode": "é 😀",
                    },
                    ensure_ascii=False,
                )
            elif i == 2:
                prefs = "null"  # the JSON literal null (not SQL NULL)
            elif i == 3:
                prefs = '"just a JSON string"'
            elif i == 4:
                prefs = None
            rows.append(
                (
                    i,
                    f"customer{i}@example.com",
                    name,
                    rng.choice(_LATIN1) if i % 4 else None,
                    int(i % 7 != 0),
                    i % 3 == 0,  # BIT(1)
                    tiers[i % 3],
                    interests[i % len(interests)],
                    prefs,
                    birth,
                    year,
                    _when(rng),
                    updated,
                    login,
                )
            )
        self.add(
            "customers",
            "id email full_name legacy_name is_active newsletter tier interests preferences "
            "birth_date signup_year created_at updated_at last_login",
            rows,
        )

    def addresses(self) -> None:
        rng = self.rng
        rows = []
        next_id = 1
        for customer in range(1, self.n_customers + 1):
            mine = []
            for kind in ("billing", "shipping")[: rng.choice([1, 2, 2])]:
                lon = round(rng.uniform(-180, 180), 6)
                lat = round(rng.uniform(-90, 90), 6)
                rows.append(
                    (
                        next_id,
                        customer,
                        kind,
                        f'{rng.randrange(1, 300)}, rue de l\'Église "bis"',
                        rng.choice(_CITIES),
                        f"{rng.randrange(10000, 99999)}  ",  # CHAR drops trailing spaces
                        rng.choice(["FR", "DE", "DK", "BR", "PL", "CA"]),
                        f"POINT({lon} {lat})",
                        int(kind == "shipping"),
                    )
                )
                mine.append(next_id)
                next_id += 1
            self.address_of[customer] = mine
        self.add(
            "addresses", "id customer_id kind line1 city postcode country location is_default", rows
        )

    def products(self) -> None:
        rng = self.rng
        self.n_products = max(20, self.n_customers // 2)
        rows = []
        for i in range(1, self.n_products + 1):
            stock: int = rng.randrange(0, 10_000)
            cost: Any = Decimal(rng.randrange(1, 10**8)) / 10**4
            weight: Any = rng.choice([None, 0.25, 1.5, 19.99, 0.001, 1234.5])
            rating: Any = rng.choice([None, 4.5, 1 / 3, 2.718281828459045])
            discontinued: Any = rng.choice([None, None, "2023-06-30"])
            if i == 1:
                stock, cost, rating = (
                    2**64 - 1,
                    Decimal("12345678901234567890123456789012345.123456789012345678901234567890"),
                    1e-300,
                )
                discontinued = "0000-00-00"
            elif i == 2:
                stock, cost, discontinued = (
                    2**63,
                    Decimal("-0.000000000000000000000000000001"),
                    ("9999-12-31"),
                )
            elif i == 3:
                stock, cost, weight, discontinued = 0, Decimal(0), 3.40282e38, "2021-02-00"
            attributes = json.dumps(
                {
                    "color": rng.choice(["red", "vert", "blå"]),
                    "dims": [rng.randrange(1, 100), 2.5, 300.0],
                    "big": 12345678901234567890 + i,
                    "label": f"№{i} ✓",
                },
                ensure_ascii=False,
            )
            rows.append(
                (
                    i,
                    f"SKU-{i:08d}",
                    f"Product {i} {rng.choice(['Deluxe', 'Mini', 'Pro', 'Café'])}",
                    rng.choice([None, "Line one\nLine two\ttabbed", "Plain", 'It\'s "quoted"']),
                    Decimal(rng.randrange(100, 100_000)) / 100,
                    cost,
                    weight,
                    rating,
                    stock,
                    rng.choice([None, bytes([0, i % 256, 2]), rng.randbytes(8)]),
                    rng.choice([None, b"", b"\x00\x01\x00" + rng.randbytes(rng.randrange(40))]),
                    rng.randrange(256),
                    rng.choice([None, 1, 2**50 - 1, rng.randrange(2**50)]),
                    rng.choice([None, 1901, 2155, 2020]),
                    int(i % 5 == 0),
                    attributes if i % 6 else None,
                    discontinued,
                    _when(rng),
                )
            )
        self.add(
            "products",
            "id sku name description price cost weight_kg rating stock_units barcode thumbnail "
            "flags feature_mask launch_year is_digital attributes discontinued_on created_at",
            rows,
        )

    def product_categories(self) -> None:
        rng = self.rng
        rows = []
        for product in range(1, self.n_products + 1):
            for position, category in enumerate(rng.sample(range(1, 13), rng.randrange(1, 4))):
                rows.append((product, category, position))
        self.add("product_categories", "product_id category_id position", rows)

    def orders(self) -> None:
        rng = self.rng
        orders, items = [], []
        statuses = ["new", "paid", "shipped", "cancelled, refunded"]
        self.n_orders = self.n_customers * 2
        self.order_status: dict[int, str] = {}
        for order in range(1, self.n_orders + 1):
            customer = rng.randrange(1, self.n_customers + 1)
            status = statuses[rng.randrange(4)]
            self.order_status[order] = status
            placed = _when(rng).replace(microsecond=rng.randrange(1000) * 1000)
            total = Decimal(0)
            for line in range(1, rng.randrange(1, 5) + 1):
                quantity = rng.randrange(1, 6)
                price = Decimal(rng.randrange(100, 50_000)) / 100
                discount = Decimal(rng.choice([0, 500, 1250, 3333])) / 10_000
                items.append(
                    (order, line, rng.randrange(1, self.n_products + 1), quantity, price, discount)
                )
                total += (quantity * price * (1 - discount)).quantize(Decimal("0.01"))
            paid = placed + timedelta(minutes=rng.randrange(1, 600)) if status != "new" else None
            orders.append(
                (
                    order,
                    customer,
                    rng.choice([None, *self.address_of[customer]]),
                    status,
                    placed,
                    paid,
                    total,
                    rng.choice(["EUR", "USD", "DKK"]),
                    rng.choice([None, "", "Leave at the door, please", "Ring twice 🔔"]),
                )
            )
        self.add(
            "orders",
            "id customer_id shipping_address_id status placed_at paid_at total currency notes",
            orders,
        )
        self.add("order_items", "order_id line_no product_id quantity unit_price discount", items)

    def payments_and_shipments(self) -> None:
        rng = self.rng
        payments, shipments = [], []
        for order, status in self.order_status.items():
            if status == "new":
                continue
            paid_on: Any = f"2022-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            if order % 17 == 0:
                paid_on = "0000-00-00"
            elif order % 19 == 0:
                paid_on = "2020-00-15"
            payments.append(
                (
                    len(payments) + 1,
                    order,
                    rng.choice(["card", "transfer", "cash"]),
                    Decimal(rng.randrange(100, 100_000)) / 100,
                    paid_on,
                    rng.choice([None, rng.randbytes(rng.randrange(1, 17))]),
                    rng.choice(
                        [None, '{"ok": true, "code": 0}', '{"ok": false, "error": "déclinée"}']
                    ),
                    int(status != "cancelled, refunded"),
                )
            )
            if status == "shipped":
                shipped = _when(rng).replace(microsecond=0)
                delivered: Any = rng.choice(
                    [None, shipped + timedelta(days=2), "0000-00-00 00:00:00"]
                )
                shipments.append(
                    (
                        len(shipments) + 1,
                        order,
                        rng.choice(_CARRIERS),
                        rng.choice([None, f"TRK{order:010d}"]),
                        shipped,
                        delivered,
                        rng.choice([None, 0, 16_777_215, rng.randrange(100, 50_000)]),
                        rng.choice([None, "09:00:00", "13:30:15", "23:59:59"]),
                    )
                )
        self.add(
            "payments",
            "id order_id method amount paid_on provider_ref raw_response captured",
            payments,
        )
        self.add(
            "shipments",
            "id order_id carrier tracking shipped_at delivered_at weight_g delivery_window",
            shipments,
        )

    def reviews(self) -> None:
        rng = self.rng
        pairs = sorted(
            {
                (rng.randrange(1, self.n_products + 1), rng.randrange(1, self.n_customers + 1))
                for _ in range(self.n_customers // 2)
            }
        )
        rows = [
            (
                i,
                product,
                customer,
                rng.randrange(1, 6),
                rng.choice(["Great!", "Bof…", 'Not "great", not bad', ""]),
                rng.choice([None, "Loved it 😍\nWould buy again.", "Zu teuer, aber gut."]),
                _when(rng).replace(microsecond=0),
                rng.randrange(-3, 200),
            )
            for i, (product, customer) in enumerate(pairs, start=1)
        ]
        self.add(
            "reviews",
            "id product_id customer_id stars title body created_at helpful_votes",
            rows,
        )

    def inventory_events(self) -> None:
        rng = self.rng
        reasons = ["restock", "sale", "return, damaged", 'count "audit"']
        rows = [
            (
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                rng.randrange(1, self.n_products + 1),
                rng.randrange(-50, 200),
                rng.choice(reasons),
                _when(rng),
            )
            for _ in range(self.n_products * 3)
        ]
        self.add("inventory_events", "event_uuid product_id delta reason happened_at", rows)

    def audit_log(self) -> None:
        rng = self.rng
        rows: list[tuple[Any, ...]] = []
        for _ in range(self.n_customers):
            row = (
                _when(rng).replace(microsecond=0),
                rng.choice(["admin", "cron", "api:client-7", "Zoë"]),
                rng.choice(["login", "update", "delete", "export"]),
                rng.choice([None, '{"ip": "10.0.0.1"}', '{"changed": ["email", "tier"]}']),
                rng.choice([None, b"\x00" * 4, rng.randbytes(12)]),
            )
            rows.append(row)
            if rng.random() < 0.1:
                rows.append(row)  # an exact duplicate: only a multiset comparison sees it
        self.add("audit_log", "at actor action details payload", rows)

    def notes_and_preferences(self) -> None:
        rng = self.rng
        notes = [
            (
                i,
                rng.randrange(1, self.n_orders + 1),
                rng.choice(["all", "none", "some, but not all"]),
                rng.choice([None, "Customer called; wants a gift wrap 🎁", "Fragile"]),
                _when(rng).replace(microsecond=0),
            )
            for i in range(1, self.n_orders // 5 + 1)
        ]
        self.add(NOTES_TABLE, ("id", "Order", "select", "Note Text", "CreatedAt"), notes)
        preferences = [
            (customer, channel, int(rng.random() < 0.5), _when(rng).replace(microsecond=0))
            for customer in range(1, self.n_customers + 1, 2)
            for channel in rng.sample(["email", "sms", "post"], rng.randrange(1, 4))
        ]
        self.add(LONG_TABLE, "customer_id channel opted_in changed_at", preferences)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    values = ", ".join("ST_GeomFromText(%s)" if c == "location" else "%s" for c in columns)
    return f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in columns)}) VALUES ({values})"


async def load_shop(url: str, rows: int = 100, *, seed: int = 20240229) -> dict[str, int]:
    """Create the shop's tables and view in the MariaDB database of `url` (which should be
    empty) and fill them deterministically: `rows` customers, the rest in proportion, the same
    rows for the same `rows` and `seed`. Returns the row count of each table, by name, in
    `SHOP_TABLES` order."""
    shop = _Shop(rows, seed)
    shop.build()
    conn = await asyncmy.connect(**_parse(url), charset="utf8mb4", autocommit=False)
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SET SESSION sql_mode = '', time_zone = '+00:00'")
            for statement in SHOP_DDL:
                await cursor.execute(statement)
            counts: dict[str, int] = {}
            for table in SHOP_TABLES:
                columns, values = shop.rows[table]
                for start in range(0, len(values), 500):
                    await cursor.executemany(
                        _insert_sql(table, columns), values[start : start + 500]
                    )
                counts[table] = len(values)
            await conn.commit()
            for table in SHOP_TABLES:  # what the server holds, not what was sent
                await cursor.execute(f"SELECT count(*) FROM {_q(table)}")
                (found,) = await cursor.fetchone()
                if int(found) != counts[table]:
                    raise AssertionError(f"{table}: {found} rows loaded, {counts[table]} sent")
        return counts
    finally:
        await conn.ensure_closed()
