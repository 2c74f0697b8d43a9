{#-
  Credited leads, conversions and value per month (of the lead's creation), attribution model
  and channel, from lead_attribution; with the ad spend the dbt var `ad_spend` names, its
  cost per lead, cost per conversion and return on ad spend (docs/models.md).
-#}
{%- set project = has_project_column() %}
{%- set double = type_double() %}
{%- set spend = ad_spend_relation() %}
{%- set spend_project = spend is not none and ad_spend_has_project(spend) %}
{%- if project and spend is not none and not spend_project and execute %}
    {{ exceptions.raise_compiler_error(
        "The ad spend in " ~ spend ~ " (dbt var `ad_spend`) has no `project` column, but the "
        ~ "leads come from several projects: add one, naming each row's project as the tap's "
        ~ "`projects` setting does."
    ) }}
{%- endif %}
{%- set key = with_project('month, attribution_model, source, medium, campaign') %}

with credited as (

    select
        {%- if project %}
        project,
        {%- endif %}
        cast({{ dbt.date_trunc('month', 'created_at') }} as date) as month,
        attribution_model,
        source,
        medium,
        campaign,
        sum(credit) as credited_leads,
        sum(case when status_group = 'converted' then credit else 0 end) as credited_conversions,
        sum(credit * coalesce(price_cents, 0)) as credited_value_cents
    from {{ ref('lead_attribution') }}
    group by {{ key }}

)
{%- if spend is none %}

select
    *,
    cast(null as {{ double }}) as spend_cents,
    cast(null as {{ double }}) as cost_per_lead_cents,
    cast(null as {{ double }}) as cost_per_conversion_cents,
    cast(null as {{ double }}) as roas
from credited
{%- else %}
,

spend as (

    -- Spend is in the currency of LeadTrackr's `price`, in units: cents here, as value is.
    select
        {%- if project %}
        project,
        {%- endif %}
        cast({{ dbt.date_trunc('month', 'cast(' ~ adapter.quote('date') ~ ' as date)') }} as date)
            as month,
        coalesce(nullif(trim(source), ''), '(none)') as source,
        coalesce(nullif(trim(medium), ''), '(none)') as medium,
        coalesce(nullif(trim(campaign), ''), '(none)') as campaign,
        sum(cast(spend as {{ double }})) * 100 as spend_cents
    from {{ spend }}
    group by {{ '1, 2, 3, 4, 5' if project else '1, 2, 3, 4' }}

),

models as (

    {%- for model in attribution_models() %}
    select '{{ model }}' as attribution_model{{ ' union all' if not loop.last }}
    {%- endfor %}

),

-- Each model sees all the spend, also of channels that brought no lead that month.
spent as (

    select spend.*, models.attribution_model
    from spend
    cross join models

),

joined as (

    select
        {%- if project %}
        coalesce(credited.project, spent.project) as project,
        {%- endif %}
        {%- for column in ['month', 'attribution_model', 'source', 'medium', 'campaign'] %}
        coalesce(credited.{{ column }}, spent.{{ column }}) as {{ column }},
        {%- endfor %}
        coalesce(credited.credited_leads, 0) as credited_leads,
        coalesce(credited.credited_conversions, 0) as credited_conversions,
        coalesce(credited.credited_value_cents, 0) as credited_value_cents,
        spent.spend_cents
    from credited
    full outer join spent
        on spent.month = credited.month
        and spent.attribution_model = credited.attribution_model
        and spent.source = credited.source
        and spent.medium = credited.medium
        and spent.campaign = credited.campaign
        {{ same_project('spent', 'credited') }}

)

select
    *,
    spend_cents / nullif(credited_leads, 0) as cost_per_lead_cents,
    spend_cents / nullif(credited_conversions, 0) as cost_per_conversion_cents,
    credited_value_cents / nullif(spend_cents, 0) as roas
from joined
{%- endif %}
